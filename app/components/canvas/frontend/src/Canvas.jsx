// The canvas: the spec's blocks as React Flow nodes, its connections as edges.
//
// Python owns the spec. Every change a person makes here is sent as one action
// ({op: "add" | "connect" | "disconnect" | "delete" | "select" | "layout" | "undo" | "redo"});
// Python applies it to the spec and sends the new graph back. Only positions live here.
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  Background,
  Controls,
  Handle,
  MiniMap,
  Position,
  ReactFlow,
  ReactFlowProvider,
  applyNodeChanges,
  useReactFlow,
} from "@xyflow/react";
import { NODE_HEIGHT, NODE_WIDTH, layout } from "./layout.js";

const DRAG_TYPE = "application/x-studio-layer";
// nodes shown when a graph is laid out (more would be too small to read), per direction
const FIT_FIRST = { LR: 5, TB: 6 };

// Where a block dropped at `point` goes: after the last block (in model order) whose centre lies
// before the point along the flow, or first (after the input) when none does.
function dropAfter(nodes, positions, point, direction) {
  const axis = direction === "TB" ? "y" : "x";
  const half = (direction === "TB" ? NODE_HEIGHT : NODE_WIDTH) / 2;
  let after = "__input__";
  for (const node of nodes) {
    const at = positions[node.uid];
    if (node.kind === "block" && at && at[axis] + half < point[axis]) after = node.uid;
  }
  return after;
}

function BlockNode({ data }) {
  const horizontal = data.direction === "LR";
  const classes = ["studio-node", `family-${data.family}`, `status-${data.status}`];
  if (data.selected) classes.push("is-selected");
  if (data.frozen) classes.push("is-frozen");
  return (
    <div
      className={classes.join(" ")}
      data-testid="canvas-node"
      data-uid={data.uid}
      data-type={data.type}
      data-index={data.index}
      data-status={data.status}
      data-frozen={data.frozen ? "true" : "false"}
      title={(data.description || "") + (data.frozen ? " (frozen: its weights do not train)" : "")}
    >
      <Handle type="target" position={horizontal ? Position.Left : Position.Top} />
      <div className="studio-node-title">
        <span className="studio-node-index">{data.index}.</span> {data.type}
        {data.block_id ? <span className="studio-node-id"> · {data.block_id}</span> : null}
      </div>
      <div className="studio-node-meta">
        {data.shape ? `→ ${data.shape}` : data.status === "error" ? "error" : "not reached"}
        {data.params != null ? ` · ${data.params} params` : ""}
        {data.frozen ? <span className="studio-node-frozen"> · frozen</span> : null}
      </div>
      {data.message ? <div className="studio-node-message">{data.message}</div> : null}
      <Handle type="source" position={horizontal ? Position.Right : Position.Bottom} />
    </div>
  );
}

function InputNode({ data }) {
  const horizontal = data.direction === "LR";
  return (
    <div className="studio-node studio-input" data-testid="canvas-input">
      <div className="studio-node-title">Input</div>
      <div className="studio-node-meta">{data.shape || "shape not set"}</div>
      <Handle type="source" position={horizontal ? Position.Right : Position.Bottom} />
    </div>
  );
}

const NODE_TYPES = { block: BlockNode, modelInput: InputNode };

function structureOf(graph) {
  const nodes = graph.nodes.map((n) => n.uid).join(",");
  const edges = graph.edges.map((e) => `${e.source}>${e.target}`).join(",");
  return `${graph.direction}|${nodes}|${edges}`;
}

function Palette({ palette, onAdd }) {
  return (
    <div className="studio-palette" data-testid="canvas-palette">
      <div className="studio-palette-title">Drag a block to where it goes in the model</div>
      {palette.map((group) => (
        <div key={group.family} className="studio-palette-group">
          <div className={`studio-palette-family family-${group.family}`}>{group.family}</div>
          {group.types.map((item) => (
            <button
              key={item.name}
              type="button"
              draggable
              className={`studio-palette-item family-${group.family}`}
              data-testid="canvas-palette-item"
              data-type={item.name}
              title={`${item.description} (drag onto the canvas, or click to add at the end)`}
              onDragStart={(event) => {
                event.dataTransfer.setData(DRAG_TYPE, item.name);
                event.dataTransfer.setData("text/plain", item.name);
                event.dataTransfer.effectAllowed = "move";
              }}
              onClick={() => onAdd(item.name)}
            >
              {item.name}
            </button>
          ))}
        </div>
      ))}
    </div>
  );
}

function Flow({ graph, send }) {
  const flow = useReactFlow();
  const [nodes, setNodes] = useState([]);
  const positions = useRef({});
  const laidOut = useRef("");
  const [layoutVersion, setLayoutVersion] = useState(0);
  const direction = graph.direction || "LR";

  const edges = useMemo(
    () =>
      graph.edges.map((edge) => ({
        id: `${edge.source}>${edge.target}`,
        source: edge.source,
        target: edge.target,
        label: edge.shape || undefined,
        className: edge.explicit ? "studio-edge explicit" : "studio-edge",
        deletable: edge.explicit,
        data: { explicit: edge.explicit },
      })),
    [graph],
  );

  useEffect(() => {
    const structure = structureOf(graph);
    if (structure !== laidOut.current) {
      positions.current = layout(graph.nodes.map((n) => ({ id: n.uid })), edges, direction);
      laidOut.current = structure;
      setLayoutVersion((version) => version + 1);
    }
    setNodes(
      graph.nodes.map((node) => ({
        id: node.uid,
        type: node.kind === "input" ? "modelInput" : "block",
        position: positions.current[node.uid] || { x: 0, y: 0 },
        data: { ...node, direction },
        deletable: node.kind !== "input",
        selected: Boolean(node.selected),
      })),
    );
  }, [graph, edges, direction]);

  // after a new layout, show the input and the first blocks at a readable size; the minimap
  // and panning reach the rest of a long model
  useEffect(() => {
    if (!layoutVersion) return undefined;
    const first = graph.nodes.slice(0, FIT_FIRST[direction] || 5).map((node) => ({ id: node.uid }));
    const timer = setTimeout(() => flow.fitView({ nodes: first, padding: 0.2, maxZoom: 1 }), 60);
    return () => clearTimeout(timer);
  }, [layoutVersion]); // eslint-disable-line react-hooks/exhaustive-deps

  const onNodesChange = useCallback((changes) => {
    for (const change of changes) {
      if (change.type === "position" && change.position) {
        positions.current[change.id] = change.position;
      }
    }
    setNodes((current) => applyNodeChanges(changes.filter((c) => c.type !== "remove"), current));
  }, []);

  const onDrop = useCallback(
    (event) => {
      event.preventDefault();
      const type = event.dataTransfer.getData(DRAG_TYPE) || event.dataTransfer.getData("text/plain");
      if (!type) return;
      const point = flow.screenToFlowPosition({ x: event.clientX, y: event.clientY });
      send({ op: "add", type, after: dropAfter(graph.nodes, positions.current, point, direction) });
    },
    [send, flow, graph, direction],
  );

  return (
    <div className="studio-flow" onDragOver={(e) => e.preventDefault()} onDrop={onDrop}>
      <ReactFlow
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        onNodesChange={onNodesChange}
        onConnect={(c) => send({ op: "connect", source: c.source, target: c.target })}
        onNodesDelete={(deleted) =>
          deleted.forEach((node) => node.type === "block" && send({ op: "delete", uid: node.id }))
        }
        onEdgesDelete={(deleted) =>
          deleted.forEach((e) => send({ op: "disconnect", source: e.source, target: e.target }))
        }
        onNodeClick={(_, node) => node.type === "block" && send({ op: "select", uid: node.id })}
        onPaneClick={() => graph.nodes.some((n) => n.selected) && send({ op: "select", uid: null })}
        deleteKeyCode={["Backspace", "Delete"]}
        minZoom={0.2}
        proOptions={{ hideAttribution: true }}
      >
        <Background gap={18} />
        <Controls showInteractive={false} />
        <MiniMap pannable zoomable />
      </ReactFlow>
    </div>
  );
}

export default function Canvas({ graph, send }) {
  const direction = graph.direction || "LR";
  const onKeyDown = (event) => {
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && key === "z") {
      event.preventDefault();
      send({ op: event.shiftKey ? "redo" : "undo" });
    } else if ((event.ctrlKey || event.metaKey) && key === "y") {
      event.preventDefault();
      send({ op: "redo" });
    }
  };
  return (
    <div className="studio-canvas" data-testid="studio-canvas" onKeyDown={onKeyDown}>
      <Palette palette={graph.palette || []} onAdd={(type) => send({ op: "add", type })} />
      <div className="studio-canvas-main">
        <div className="studio-toolbar">
          <button
            type="button"
            data-testid="canvas-undo"
            disabled={!graph.can_undo}
            onClick={() => send({ op: "undo" })}
            title="Undo the last change (Ctrl+Z)"
          >
            ↶ Undo
          </button>
          <button
            type="button"
            data-testid="canvas-redo"
            disabled={!graph.can_redo}
            onClick={() => send({ op: "redo" })}
            title="Redo (Ctrl+Shift+Z)"
          >
            ↷ Redo
          </button>
          <span className="studio-toolbar-gap" />
          <button
            type="button"
            data-testid="canvas-direction"
            onClick={() => send({ op: "layout", direction: direction === "LR" ? "TB" : "LR" })}
            title="Lay the graph out again, left to right or top to bottom"
          >
            {direction === "LR" ? "Left → right" : "Top ↓ bottom"}
          </button>
          <span className="studio-toolbar-hint">
            Drag from a block's outgoing dot to another block to connect; select and press Delete to
            remove.
          </span>
        </div>
        <ReactFlowProvider>
          <Flow graph={graph} send={send} />
        </ReactFlowProvider>
      </div>
    </div>
  );
}
