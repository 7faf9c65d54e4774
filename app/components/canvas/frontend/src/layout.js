// Automatic layout (dagre): left to right ("LR") or top to bottom ("TB").
import dagre from "@dagrejs/dagre";

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 74;

export function layout(nodes, edges, direction) {
  const graph = new dagre.graphlib.Graph();
  graph.setDefaultEdgeLabel(() => ({}));
  graph.setGraph({ rankdir: direction, nodesep: 28, ranksep: 54 });
  for (const node of nodes) graph.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const edge of edges) graph.setEdge(edge.source, edge.target);
  dagre.layout(graph);
  const positions = {};
  for (const node of nodes) {
    const placed = graph.node(node.id);
    positions[node.id] = { x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 };
  }
  return positions;
}
