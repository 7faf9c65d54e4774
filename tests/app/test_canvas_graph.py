"""The canvas's graph and actions without Streamlit: edges follow the spec's connections, merges
gain inputs, backwards connections are refused, and undo/redo walk the spec's versions."""

from __future__ import annotations

import pytest

from app import canvas_graph, spec_editor
from app.canvas_graph import INPUT_NODE, History
from core import builder, templates
from core.errors import SpecError
from core.facts import ModelFacts


def stem(layer_type: str) -> str:
    return layer_type.lower()


def test_a_residual_template_has_one_edge_per_connection_with_its_shape():
    spec = next(t.spec for t in templates.list_templates() if t.name == "residual-cnn")
    draft = spec_editor.from_spec(spec)
    result = builder.trace(spec_editor.to_spec(draft), ModelFacts.from_input_shape((1, 8, 8)))
    graph = canvas_graph.graph_data(draft, result, input_shape=(1, 8, 8))
    uid = {b.uid: i for i, b in enumerate(draft.blocks)} | {INPUT_NODE: "in"}
    pairs = [(uid[e["source"]], uid[e["target"]]) for e in graph["edges"]]
    merges = sum(1 for layer in spec["layers"] if layer["type"] == "Add")
    assert len(pairs) == len(spec["layers"]) + merges  # one per block, a second per Add
    assert (2, 8) in pairs and (7, 8) in pairs and (10, 16) in pairs  # shortcuts by id
    assert pairs[0] == ("in", 0)
    shortcut = next(e for e in graph["edges"] if (uid[e["source"]], uid[e["target"]]) == (2, 8))
    assert shortcut["shape"] == "32×8×8" and shortcut["explicit"]
    assert [n["status"] for n in graph["nodes"][1:]] == ["ok"] * len(spec["layers"])
    assert graph["nodes"][1]["params"] == "320" and graph["nodes"][1]["family"] == "CNN"
    assert not any(n.get("frozen") for n in graph["nodes"])


def test_a_frozen_block_is_marked_on_the_canvas():
    spec = {
        "layers": [
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "frozen": True},
            {"type": "Flatten"},
            {"type": "Linear", "out_features": 10},
        ]
    }
    draft = spec_editor.from_spec(spec)
    result = builder.trace(spec_editor.to_spec(draft), ModelFacts.from_input_shape((1, 8, 8)))
    graph = canvas_graph.graph_data(draft, result, input_shape=(1, 8, 8))
    assert [n.get("frozen") for n in graph["nodes"]] == [None, True, False, False]


def test_connect_makes_merges_and_replaces_single_inputs():
    draft = spec_editor.Draft()
    conv, relu, add = (
        canvas_graph.apply_action(draft, {"op": "add", "type": t}, stem_of=stem)
        for t in ("Conv2d", "ReLU", "Add")
    )
    canvas_graph.connect(draft, conv, add, stem)
    assert draft.block(add).layer["inputs"] == ["relu1", "conv2d1"]
    canvas_graph.connect(draft, INPUT_NODE, relu, stem)  # a single input is replaced
    assert draft.block(relu).layer["inputs"] == ["input"]
    canvas_graph.connect(draft, conv, relu, stem)  # back to the block before it: no inputs
    assert "inputs" not in draft.block(relu).layer
    with pytest.raises(SpecError, match="runs before block 2"):
        canvas_graph.connect(draft, add, relu, stem)
    with pytest.raises(SpecError, match="reads the block before it by default"):
        canvas_graph.disconnect(draft, conv, relu)


def test_history_undoes_and_redoes_versions_and_a_new_change_drops_the_redo():
    history = History()
    for n in range(3):
        history.observe({"layers": [{"type": "ReLU"}] * n})
    assert history.undo() == {"layers": [{"type": "ReLU"}]}
    assert history.undo() == {"layers": []}
    assert history.undo() is None and history.can_redo
    assert history.redo() == {"layers": [{"type": "ReLU"}]}
    history.observe({"layers": [{"type": "Tanh"}]})
    assert not history.can_redo
    assert history.undo() == {"layers": [{"type": "ReLU"}]}


def test_a_dropped_block_goes_where_it_was_dropped():
    spec = {"layers": [{"type": "Flatten"}, {"type": "Linear", "out_features": 10}]}
    draft = spec_editor.from_spec(spec)
    flatten, linear = (b.uid for b in draft.blocks)

    def types() -> list[str]:
        return [b.type for b in draft.blocks]

    canvas_graph.apply_action(draft, {"op": "add", "type": "ReLU", "after": flatten}, stem_of=stem)
    assert types() == ["Flatten", "ReLU", "Linear"]
    canvas_graph.apply_action(
        draft, {"op": "add", "type": "Dropout", "after": INPUT_NODE}, stem_of=stem
    )
    assert types() == ["Dropout", "Flatten", "ReLU", "Linear"]
    canvas_graph.apply_action(
        draft, {"op": "add", "type": "Sigmoid", "after": linear}, stem_of=stem
    )
    canvas_graph.apply_action(draft, {"op": "add", "type": "Identity"}, stem_of=stem)  # no place
    assert types() == ["Dropout", "Flatten", "ReLU", "Linear", "Sigmoid", "Identity"]
    before = list(draft.blocks)
    with pytest.raises(SpecError, match="no longer in the model"):
        canvas_graph.apply_action(
            draft, {"op": "add", "type": "ReLU", "after": "gone"}, stem_of=stem
        )
    assert draft.blocks == before  # nothing changed
