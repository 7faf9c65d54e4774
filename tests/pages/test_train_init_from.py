"""Train page's "Start from run…": the preview before launch, and the run's recorded parent."""

from __future__ import annotations

from app import state
from core import runs
from tests.pages.test_train_page import train_page_with_a_cnn
from tests.specs import TINY_MLP


def test_start_from_run_previews_the_layers_and_records_the_parent():
    parent = runs.train_run_foreground(
        spec=TINY_MLP, dataset="digits", config={"epochs": 1, "device": "cpu"}
    )
    assert parent["status"] == "completed", parent["error"]
    at = train_page_with_a_cnn()
    at.selectbox(key=state.TRAIN_INIT_FROM).set_value(parent["run_id"]).run()
    assert not at.exception, at.exception
    preview = " ".join(c.value for c in at.caption).replace("\\", "")  # markdown escapes
    assert f"Loaded from run {parent['run_id']}: nothing" in preview
    assert "New (random start): conv1" in preview
    assert f"Skipped fc1: fc1 reads 64 features in run {parent['run_id']}" in preview
    at.button(key="train.launch").click().run()
    child = runs.list_runs()[0]
    assert child.parent_run_id == parent["run_id"]
    assert child.origin == {
        "kind": "init-from",
        "from_run": parent["run_id"],
        "init": {"from_run": parent["run_id"]},
    }
