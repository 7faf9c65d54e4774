"""Runs page, through AppTest: the table, overlays, the confusion matrix, open and delete."""

from __future__ import annotations

import json

import pytest

from app import state
from core import runs
from tests.pages.conftest import blocks, open_app

SPEC = {
    "name": "tiny-mlp",
    "layers": [
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 16},
        {"type": "ReLU"},
        {"type": "Linear"},
    ],
}


@pytest.fixture
def two_runs() -> list[int]:
    """Two short completed runs on digits, trained in this process by the worker's own code."""
    ids = []
    for seed in (0, 1):
        result = runs.train_run_foreground(
            spec=SPEC, dataset="digits", config={"steps": 30, "seed": seed, "log_every": 5}
        )
        assert result["status"] == "completed"
        ids.append(result["run_id"])
    return ids


def traces(chart) -> list[dict]:
    return json.loads(chart.proto.spec)["data"]


def test_the_table_lists_every_run_with_its_results(two_runs):
    at = open_app("runs")
    table = at.dataframe[0].value
    assert sorted(table["run"]) == sorted(two_runs)
    assert set(table["status"]) == {"completed"}
    assert set(table["dataset"]) == {"digits"} and set(table["model"]) == {"tiny-mlp"}
    assert table["test accuracy"].between(0, 1).all()
    assert table["best val accuracy"].notna().all()
    assert {"duration", "device"} <= set(table.columns)
    # how each run was trained, in the table itself
    assert set(table["optimizer"]) == {"adam"} and set(table["learning rate"]) == {"0.001"}
    assert set(table["length"]) == {"30 steps"} and set(table["schedule"]) == {"no schedule"}
    assert set(table["batch size"]) == {"64"}


def test_runs_overlay_and_the_confusion_matrix(two_runs):
    at = open_app("runs")
    assert sorted(at.multiselect(key=state.RUNS_COMPARE).value) == sorted(two_runs)
    charts = at.get("plotly_chart")
    overlay = traces(charts[0])
    assert {t["name"] for t in overlay} == {
        f"run {i} · adam lr 0.001 · no schedule" for i in two_runs
    }
    newest, oldest = sorted(two_runs, reverse=True)
    said = " ".join(c.value for c in at.caption).replace("\\", "")  # markdown escapes
    assert f"Run {newest} → run {oldest}: seed: 1 → 0." in said
    heatmap = traces(charts[1])[0]
    assert heatmap["type"] == "heatmap" and len(heatmap["x"]) == 10
    bars = traces(charts[2])[0]
    assert bars["type"] == "bar" and len(bars["x"]) == 10


def test_the_run_in_detail_comes_from_the_url(two_runs):
    first, second = two_runs
    at = open_app("runs", query_params={state.QP_RUN: str(first)})
    assert at.selectbox(key=state.RUNS_DETAIL).value == first
    at.selectbox(key=state.RUNS_DETAIL).set_value(second).run()
    value = at.query_params[state.QP_RUN]
    assert (value[0] if isinstance(value, list) else value) == str(second)


def test_open_a_runs_model_in_build(two_runs):
    at = open_app("runs")
    at.button(key="runs.open_build").click().run()
    assert not at.exception
    assert [b.type for b in blocks(at)] == ["Flatten", "Linear", "ReLU", "Linear"]
    assert any("Opened the model of run" in s.value for s in at.success)


def test_delete_asks_first_then_removes_the_run(two_runs):
    first, second = two_runs
    at = open_app("runs", query_params={state.QP_RUN: str(first)})
    at.button(key="runs.delete").click().run()
    assert any(f"Delete run {first}" in w.value for w in at.warning)
    at.button(key="runs.delete_cancel").click().run()
    assert {r.id for r in runs.list_runs()} == {first, second}
    at.button(key="runs.delete").click().run()
    at.button(key="runs.delete_confirm").click().run()
    assert {r.id for r in runs.list_runs()} == {second}
    assert any(f"Deleted run {first}" in s.value for s in at.success)
    assert not at.exception


def test_no_runs_yet_says_where_to_start():
    at = open_app("runs")
    assert any("No runs yet" in i.value for i in at.info)


def test_a_run_stuck_at_chance_is_flagged_with_what_to_try():
    stuck = runs.train_run_foreground(
        spec=SPEC,
        dataset="digits",
        config={"steps": 30, "optimizer": "sgd", "lr": 1e-7, "momentum": 0.0, "log_every": 5},
    )["run_id"]
    at = open_app("runs", query_params={state.QP_RUN: str(stuck)})
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["note"]) == ["did not learn: loss at chance"]
    warning = " ".join(w.value for w in at.warning).replace("\\", "")
    assert "did not learn" in warning and "ln 10" in warning and "Try:" in warning
    captions = " ".join(c.value for c in at.caption).replace("\\", "")
    assert "Settings: sgd · lr 1e-07 · no schedule · 30 steps" in captions
