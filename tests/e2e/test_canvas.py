"""The Build page's canvas in a real browser: a template drawn as one node per block and one
edge per connection, blocks dragged from the canvas palette and wired by their handles (a
residual Add), a red node for a shape error, undo, a block dropped between two others, and the
same graph after a reload."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from app import canvas_graph, spec_editor
from core import templates
from tests import polling

pytestmark = pytest.mark.e2e

wait_for = functools.partial(polling.wait_for, every=0.3)
CRASH = "This app has encountered an error"
NODES = "[data-testid='canvas-node']"


def nodes(page) -> list[dict]:
    """The block nodes on the canvas: index, type, status, uid (in index order)."""
    found = page.locator(NODES).evaluate_all(
        """els => els.map(e => ({index: Number(e.dataset.index), type: e.dataset.type,
                                 status: e.dataset.status, uid: e.dataset.uid,
                                 text: e.innerText}))"""
    )
    return sorted(found, key=lambda n: n["index"])


def edges(page) -> set[tuple[str, str]]:
    """Connections as (source, target) block indices ("in" = the model input)."""
    by_uid = {n["uid"]: str(n["index"]) for n in nodes(page)}
    by_uid[canvas_graph.INPUT_NODE] = "in"
    ids = page.locator(".react-flow__edge").evaluate_all(
        "els => els.map(e => e.getAttribute('data-id') || e.getAttribute('data-testid'))"
    )
    pairs = set()
    for ident in ids:
        source, _, target = ident.removeprefix("rf__edge-").partition(">")
        pairs.add((by_uid.get(source, source), by_uid.get(target, target)))
    return pairs


def expected_edges(spec: dict) -> set[tuple[str, str]]:
    draft = spec_editor.from_spec(spec)
    index = {b.uid: str(i) for i, b in enumerate(draft.blocks)}
    index[canvas_graph.INPUT_NODE] = "in"
    pairs = set()
    for position, block in enumerate(draft.blocks):
        for source in canvas_graph.sources_of(draft, position)[0]:
            pairs.add((index[source], index[block.uid]))
    return pairs


def no_crash(page, home: Path) -> None:
    """No traceback and no crash page; on failure the server's log says why (the page itself
    hides the details)."""
    crashed = page.get_by_test_id("stException").count() or page.get_by_text(CRASH).count()
    log = (home / "ui.log").read_text(errors="replace")[-4000:] if crashed else ""
    assert not crashed, f"the page crashed; the end of ui.log:\n{log}"


def drag_from_palette(page, layer_type: str, *, between: tuple[int, int] | None = None) -> None:
    """Drop a palette block right of the last node (the end of the model), or halfway between
    the nodes of two block indices (left to right layout)."""
    count = len(nodes(page))
    item = page.locator(f"[data-testid='canvas-palette-item'][data-type='{layer_type}']")
    pane = page.locator(".react-flow__pane")
    area = pane.bounding_box()
    boxes = page.locator(NODES).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return {index: Number(e.dataset.index), x: r.x, y: r.y, w: r.width, h: r.height}; })"
    )
    boxes = sorted(boxes, key=lambda b: b["index"])
    if between is not None:
        left, right = boxes[between[0]], boxes[between[1]]
        x, y = (left["x"] + left["w"] + right["x"]) / 2, left["y"] + left["h"] / 2
    elif boxes:
        x, y = boxes[-1]["x"] + boxes[-1]["w"] + 30, boxes[-1]["y"] + boxes[-1]["h"] / 2
    else:
        x, y = area["x"] + area["width"] / 2, area["y"] + area["height"] / 2
    x = min(max(x, area["x"] + 5), area["x"] + area["width"] - 5)
    y = min(max(y, area["y"] + 5), area["y"] + area["height"] - 5)
    item.drag_to(pane, target_position={"x": x - area["x"], "y": y - area["y"]})
    wait_for(lambda: len(nodes(page)) == count + 1, timeout=30, what=f"{layer_type} on the canvas")


def connect(page, source_index: int, target_index: int) -> None:
    """Drag from one node's outgoing handle to another node's incoming handle."""
    source = page.locator(f"{NODES}[data-index='{source_index}'] .react-flow__handle.source")
    target = page.locator(f"{NODES}[data-index='{target_index}'] .react-flow__handle.target")
    start, end = source.bounding_box(), target.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=12)
    page.mouse.up()


def test_a_template_is_drawn_block_by_block_and_survives_a_reload(
    browser_page, studio, studio_home
):
    page = browser_page
    spec = next(t.spec for t in templates.list_templates() if t.name == "residual-cnn")
    page.goto(f"{studio}/?draft={spec_editor.encode(spec)}")
    page.locator(NODES).first.wait_for()
    wait_for(lambda: len(nodes(page)) == len(spec["layers"]), timeout=30, what="every block")
    assert [n["type"] for n in nodes(page)] == [layer["type"] for layer in spec["layers"]]
    assert all(n["status"] == "ok" for n in nodes(page))
    wanted = expected_edges(spec)
    assert ("2", "8") in wanted and ("10", "16") in wanted  # the shortcuts, named by id
    wait_for(lambda: edges(page) == wanted, timeout=30, what="one edge per connection")
    # edges carry the tensor shape; nodes the parameters from the builder's trace
    assert page.locator(".react-flow__edge-text").filter(has_text="32×8×8").count() > 0
    assert "320 params" in nodes(page)[0]["text"]  # Conv2d 1 -> 32, 3x3: 32*9 + 32

    page.reload()
    page.locator(NODES).first.wait_for()
    wait_for(lambda: len(nodes(page)) == len(spec["layers"]), timeout=30, what="after reload")
    assert [n["type"] for n in nodes(page)] == [layer["type"] for layer in spec["layers"]]
    wait_for(lambda: edges(page) == wanted, timeout=30, what="the same edges after reload")
    no_crash(page, studio_home)


def test_blocks_are_dragged_in_wired_into_a_residual_add_and_undone(
    browser_page, studio, studio_home
):
    page = browser_page
    page.goto(studio)
    page.get_by_text("Build a model").wait_for()
    page.locator("[data-testid='canvas-palette']").wait_for()
    for layer_type in ("Conv2d", "ReLU", "Add"):
        drag_from_palette(page, layer_type)
    # Add reads only the ReLU so far: the builder says it needs two inputs, on a red node
    wait_for(lambda: nodes(page)[2]["status"] == "error", timeout=30, what="a lone Add is red")

    connect(page, 0, 2)  # the shortcut: Conv2d -> Add, beside ReLU -> Add
    wait_for(lambda: nodes(page)[2]["status"] == "ok", timeout=30, what="the residual Add")
    assert {("0", "1"), ("1", "2"), ("0", "2")} <= edges(page)
    page.get_by_text("2. Add").first.wait_for()  # the cards follow the canvas

    drag_from_palette(page, "Flatten")
    drag_from_palette(page, "Conv2d")  # an image layer after Flatten: a shape error
    wait_for(lambda: nodes(page)[4]["status"] == "error", timeout=30, what="the red Conv2d")
    assert "image" in nodes(page)[4]["text"].lower() or "conv2d" in nodes(page)[4]["text"].lower()
    no_crash(page, studio_home)

    page.locator("[data-testid='canvas-undo']").click()  # the last change goes
    wait_for(lambda: len(nodes(page)) == 4, timeout=30, what="undo removes the Conv2d")
    page.locator("[data-testid='canvas-redo']").click()
    wait_for(lambda: len(nodes(page)) == 5, timeout=30, what="redo brings it back")

    drag_from_palette(page, "Dropout", between=(0, 1))  # dropped between the Conv2d and ReLU
    wait_for(lambda: nodes(page)[1]["type"] == "Dropout", timeout=30, what="Dropout placed 2nd")
    assert [n["type"] for n in nodes(page)] == [
        "Conv2d",
        "Dropout",
        "ReLU",
        "Add",
        "Flatten",
        "Conv2d",
    ]
    no_crash(page, studio_home)
