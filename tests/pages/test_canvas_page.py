"""The Build page's side of the canvas, through AppTest: an action the canvas sends (add,
connect, disconnect, delete, select, undo, redo) changes the spec, and the cards, the layer
table and the URL draft follow. The browser half is tests/e2e/test_canvas.py."""

from __future__ import annotations

import json

from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.proto.WidgetStates_pb2 import WidgetState

from app import canvas_graph, spec_editor, state
from app.components.canvas import ACTION, COMPONENT_NAME
from tests.pages.conftest import blocks, open_app


def graph(at) -> dict:
    """The graph the page sent to the canvas in its last run."""
    mounted = [e for e in at.get("bidi_component") if e.proto.component_name == COMPONENT_NAME]
    assert len(mounted) == 1
    return json.loads(mounted[0].proto.json)


def send(at, **action) -> None:
    """What the browser does when the canvas calls setTriggerValue("action", {...})."""
    mounted = next(e for e in at.get("bidi_component") if e.proto.component_name == COMPONENT_NAME)
    states = at._tree.get_widget_states()
    trigger = WidgetState(id=_make_trigger_id(mounted.proto.id, "events"))
    trigger.json_trigger_value = json.dumps([{"event": ACTION, "value": action}])
    states.widgets.append(trigger)
    at._run(states)
    assert not at.exception, at.exception


def layer_table(at):
    return next(d for d in at.dataframe).value


def test_canvas_actions_change_the_spec_and_everything_follows():
    at = open_app()
    for layer_type in ("Conv2d", "ReLU", "Add"):
        send(at, op="add", type=layer_type)
    assert [b.type for b in blocks(at)] == ["Conv2d", "ReLU", "Add"]
    conv, relu, add = (b.uid for b in blocks(at))
    drawn = graph(at)
    assert [n["type"] for n in drawn["nodes"]] == ["Input", "Conv2d", "ReLU", "Add"]
    assert drawn["nodes"][3]["status"] == "error"  # an Add with one input

    send(at, op="connect", source=conv, target=add)  # the residual shortcut
    spec = spec_editor.to_spec(at.session_state[state.DRAFT])
    conv_id, relu_id = spec["layers"][0]["id"], spec["layers"][1]["id"]
    assert spec["layers"][2]["inputs"] == [relu_id, conv_id]
    drawn = graph(at)
    assert {(e["source"], e["target"]) for e in drawn["edges"]} == {
        (canvas_graph.INPUT_NODE, conv),
        (conv, relu),
        (relu, add),
        (conv, add),
    }
    assert all(n["status"] == "ok" for n in drawn["nodes"][1:])
    assert [e["shape"] for e in drawn["edges"] if e["target"] == add] == ["16×6×6", "16×6×6"]
    assert list(layer_table(at)["block"]) == ["Conv2d (conv1)", "ReLU (relu1)", "Add"]
    encoded = at.query_params[state.QP_DRAFT]
    draft_in_url = spec_editor.decode(encoded if isinstance(encoded, str) else encoded[0])
    assert draft_in_url["layers"] == spec["layers"]

    send(at, op="disconnect", source=conv, target=add)
    assert "inputs" not in blocks(at)[2].layer  # back to reading the block before it
    send(at, op="select", uid=relu)
    assert graph(at)["nodes"][2]["selected"]
    assert at.container(key=state.block_card_key(relu)) is not None
    send(at, op="delete", uid=relu)
    assert [b.type for b in blocks(at)] == ["Conv2d", "Add"]
    assert [e["target"] for e in graph(at)["edges"]] == [conv, add]  # the chain closes up

    send(at, op="undo")
    assert [b.type for b in blocks(at)] == ["Conv2d", "ReLU", "Add"]
    assert graph(at)["can_redo"]
    send(at, op="redo")
    assert [b.type for b in blocks(at)] == ["Conv2d", "Add"]


def test_a_connection_backwards_is_refused_with_a_message_and_changes_nothing():
    at = open_app()
    for layer_type in ("Conv2d", "ReLU"):
        send(at, op="add", type=layer_type)
    conv, relu = (b.uid for b in blocks(at))
    before = spec_editor.to_spec(at.session_state[state.DRAFT])
    send(at, op="connect", source=relu, target=conv)
    assert spec_editor.to_spec(at.session_state[state.DRAFT]) == before
    assert any("runs before block 1" in e.value for e in at.error)


RESIDUAL_CODE = """
import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.proj = nn.Conv2d(1, 4, 1)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        y = torch.relu(self.conv(x)) + self.proj(x)
        return self.fc(y.flatten(1))
"""


def test_pasted_pytorch_code_becomes_the_model_only_when_asked():
    at = open_app()
    at.text_area(key=state.CODE_IMPORT_TEXT).set_value(RESIDUAL_CODE).run()
    assert blocks(at) == []  # typing the code runs nothing
    at.button(key=state.CODE_IMPORT_RUN).click().run()
    assert not at.exception, at.exception
    assert [b.type for b in blocks(at)] == ["Conv2d", "ReLU", "Conv2d", "Add", "Flatten", "Linear"]
    assert any("Imported Residual" in s.value for s in at.success)  # checked on digits' 1×8×8
    assert [n["status"] for n in graph(at)["nodes"][1:]] == ["ok"] * 6
    at.text_area(key=state.CODE_IMPORT_TEXT).set_value("x = torch.softmax(1)\n").run()
    at.button(key=state.CODE_IMPORT_RUN).click().run()
    assert any("Not imported" in e.value for e in at.error)
    assert len(blocks(at)) == 6  # a failed import changes nothing
