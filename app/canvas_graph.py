"""The spec as a graph for the canvas, and the canvas's actions as spec changes (no Streamlit).

The spec stays the one source of truth. `graph_data` turns a draft and its trace into the nodes
and edges the canvas draws; `apply_action` turns one gesture on the canvas (add, connect,
disconnect, delete) into a change of the draft, through the same operations the block cards use;
`History` keeps the last versions of the spec for undo and redo, whichever editor made them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app import fixes, spec_editor
from app.formatting import count_text, shape_text
from core.errors import SpecError
from core.layers import LAYERS, layers_by_family
from core.spec import INPUT

INPUT_NODE = "__input__"  # the node standing for the model input (never a block's uid)
DIRECTIONS = ("LR", "TB")  # left to right, top to bottom
HISTORY_DEPTH = 50  # versions kept for undo: enough for a session's slips, small in memory
EDIT_OPS = ("add", "connect", "disconnect", "delete")  # actions that change the spec


# ---- the graph the canvas draws ----------------------------------------------------------------


def sources_of(draft: spec_editor.Draft, index: int) -> tuple[list[str], bool]:
    """The uids (or INPUT_NODE) block `index` reads, and whether its `inputs` name them (False:
    it takes the previous block's output, or the model input when it is the first)."""
    block = draft.blocks[index]
    inputs = block.layer.get("inputs")
    if isinstance(inputs, list) and inputs:
        by_id = {b.id: b.uid for b in draft.blocks if b.id}
        found = [INPUT_NODE if i == INPUT else by_id[i] for i in inputs if i == INPUT or i in by_id]
        return found, True
    return [draft.blocks[index - 1].uid if index else INPUT_NODE], False


def graph_data(
    draft: spec_editor.Draft,
    result: Any,
    *,
    input_shape: tuple[int, ...] | None,
    selected: str | None = None,
    direction: str = "LR",
    can_undo: bool = False,
    can_redo: bool = False,
) -> dict[str, Any]:
    """Nodes (the input, then one per block: type, family, output shape, parameters, status
    and the builder's message), edges (one per connection, labelled with the tensor shape that
    flows along it) and the palette, as JSON for the canvas."""
    rows = {row.index: row for row in result.layers}
    error = result.error if draft.blocks else None
    error_index = getattr(error, "index", None) if error else None
    shapes = {INPUT_NODE: shape_text(input_shape) if input_shape else None}
    nodes: list[dict[str, Any]] = [
        {"uid": INPUT_NODE, "kind": "input", "type": "Input", "shape": shapes[INPUT_NODE]}
    ]
    edges = []
    for index, block in enumerate(draft.blocks):
        known = LAYERS.get(block.type)
        row = rows.get(index)
        if row is not None:
            status, message = "ok", None
        elif index == error_index:
            status = "error"
            message = fixes.in_words(str(getattr(error, "message", None) or error))
        else:
            status, message = "unreached", None
        shapes[block.uid] = shape_text(row.output_shape) if row is not None else None
        nodes.append(
            {
                "uid": block.uid,
                "kind": "block",
                "index": index,
                "type": block.type,
                "family": known.family if known else "Common",
                "description": known.description if known else "unknown layer type",
                "block_id": block.id,
                "merge": bool(known and known.merge),
                "frozen": bool(block.layer.get("frozen")),  # its weights do not train
                "shape": shapes[block.uid],
                "params": count_text(row.params) if row is not None else None,
                "status": status,
                "message": message,
                "selected": block.uid == selected,
            }
        )
        sources, explicit = sources_of(draft, index)
        for source in sources:
            edges.append({"source": source, "target": block.uid, "explicit": explicit})
    for edge in edges:
        edge["shape"] = shapes.get(edge["source"])
    return {
        "nodes": nodes,
        "edges": edges,
        "palette": palette(),
        "direction": direction if direction in DIRECTIONS else "LR",
        "revision": draft.revision,
        "can_undo": can_undo,
        "can_redo": can_redo,
    }


def palette() -> list[dict[str, Any]]:
    return [
        {
            "family": family,
            "types": [{"name": t.name, "description": t.description} for t in types],
        }
        for family, types in layers_by_family().items()
        if types
    ]


# ---- actions from the canvas -------------------------------------------------------------------


def new_layer(layer_type: str) -> dict[str, Any]:
    """A fresh layer of `layer_type` with its required arguments pre-filled (as the palette)."""
    known = LAYERS.get(layer_type)
    if known is None:
        raise SpecError(f"unknown layer type {layer_type!r}; drag one from the palette")
    layer: dict[str, Any] = {"type": layer_type}
    layer.update({p.name: p.default for p in known.params if p.required and p.default is not None})
    return layer


def apply_action(
    draft: spec_editor.Draft, action: dict[str, Any], *, stem_of: Callable[[str], str]
) -> str | None:
    """Apply one editing action ("add", "connect", "disconnect", "delete") to the draft; returns
    the uid of an added block. SpecError (naming the blocks) when the action cannot be made;
    the draft is then unchanged. An "add" goes after the node `after` (the input: first; none:
    at the end), where the block was dropped."""
    op = action.get("op")
    if op == "add":
        layer = new_layer(str(action.get("type")))
        after = action.get("after")
        if after == INPUT_NODE:
            return spec_editor.insert(draft, layer, first=True)
        return spec_editor.insert(draft, layer, after=None if after is None else _uid(draft, after))
    if op == "delete":
        spec_editor.delete(draft, _uid(draft, action.get("uid")))
        return None
    if op == "connect":
        connect(
            draft, _source(draft, action.get("source")), _uid(draft, action.get("target")), stem_of
        )
        return None
    if op == "disconnect":
        disconnect(draft, _source(draft, action.get("source")), _uid(draft, action.get("target")))
        return None
    raise SpecError(f"the canvas sent an unknown action {op!r}")


def connect(
    draft: spec_editor.Draft, source: str, target: str, stem_of: Callable[[str], str]
) -> None:
    """Make `target` read `source`: a merge (Add, Concat) gains it as one more input, any other
    block takes it instead of what it read. Blocks run top to bottom, so `source` must come
    before `target`."""
    position = draft.index_of(target)
    block = draft.blocks[position]
    if source == target:
        raise SpecError(
            f"block {position} ({block.type}) cannot take its own output", index=position
        )
    if source != INPUT_NODE and draft.index_of(source) > position:
        earlier = draft.index_of(source)
        raise SpecError(
            f"block {position} ({block.type}) runs before block {earlier} "
            f"({draft.blocks[earlier].type}), so it cannot read its output; connect from a block "
            "above it (or move the blocks in the card list)",
            index=position,
            layer_type=block.type,
        )
    current, _ = sources_of(draft, position)
    known = LAYERS.get(block.type)
    if known is not None and known.merge:
        wanted = current if source in current else [*current, source]
    else:
        wanted = [source]
    _set_sources(draft, target, wanted, stem_of)


def disconnect(draft: spec_editor.Draft, source: str, target: str) -> None:
    """Remove the connection `source` -> `target`. A block always reads something: a block
    that loses its last named input reads the previous block again."""
    position = draft.index_of(target)
    current, explicit = sources_of(draft, position)
    if not explicit or source not in current:
        block = draft.blocks[position]
        raise SpecError(
            f"block {position} ({block.type}) reads the block before it by default; connect "
            "another block to it instead, or delete a block",
            index=position,
            layer_type=block.type,
        )
    _set_sources(draft, target, [s for s in current if s != source], None)


def _set_sources(
    draft: spec_editor.Draft, target: str, sources: list[str], stem_of: Callable[[str], str] | None
) -> None:
    position = draft.index_of(target)
    previous = draft.blocks[position - 1].uid if position else INPUT_NODE
    block = draft.blocks[position]
    before = copy.deepcopy(block.layer.get("inputs"))
    if not sources or sources == [previous]:
        block.layer.pop("inputs", None)
    else:
        ids = []
        for source in sources:
            if source == INPUT_NODE:
                ids.append(INPUT)
                continue
            giver = draft.block(source)
            if not giver.id:
                stem = stem_of(giver.type) if stem_of else giver.type
                giver.layer["id"] = spec_editor.unique_id(draft, stem)
            ids.append(giver.id)
        block.layer["inputs"] = ids
    if block.layer.get("inputs") != before:
        draft.revision += 1


def _uid(draft: spec_editor.Draft, uid: Any) -> str:
    if isinstance(uid, str):
        for block in draft.blocks:
            if block.uid == uid:
                return uid
    raise SpecError("that block is no longer in the model (it was changed elsewhere); try again")


def _source(draft: spec_editor.Draft, uid: Any) -> str:
    return INPUT_NODE if uid == INPUT_NODE else _uid(draft, uid)


# ---- undo and redo -----------------------------------------------------------------------------


@dataclass
class History:
    """The last versions of the spec. `observe` is called with the spec after every run, so a
    change made anywhere (canvas, cards, templates) can be undone."""

    current: dict[str, Any] | None = None
    past: list[dict[str, Any]] = field(default_factory=list)
    future: list[dict[str, Any]] = field(default_factory=list)

    def observe(self, spec: dict[str, Any]) -> None:
        if self.current is None:
            self.current = copy.deepcopy(spec)
        elif spec != self.current:
            self.past.append(self.current)
            del self.past[:-HISTORY_DEPTH]
            self.current = copy.deepcopy(spec)
            self.future.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self.past)

    @property
    def can_redo(self) -> bool:
        return bool(self.future)

    def undo(self) -> dict[str, Any] | None:
        """The version before the current one (None when there is none)."""
        if not self.past:
            return None
        if self.current is not None:
            self.future.append(self.current)
        self.current = self.past.pop()
        return copy.deepcopy(self.current)

    def redo(self) -> dict[str, Any] | None:
        if not self.future:
            return None
        if self.current is not None:
            self.past.append(self.current)
        self.current = self.future.pop()
        return copy.deepcopy(self.current)
