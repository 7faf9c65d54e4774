"""'Share a report' and the per-class tab, through Streamlit's AppTest on a real trained run."""

from __future__ import annotations

import pytest

from app import explain_models, report_views, state
from core import runs
from tests.pages.conftest import open_app
from tests.specs import TINY_MLP

PER_CLASS = "What it looks for in each class"


@pytest.fixture
def digits_run() -> int:
    explain_models.forget()  # run ids restart in each test's studio home
    report_views.forget()
    result = runs.train_run_foreground(
        spec=TINY_MLP, dataset="digits", config={"epochs": 1, "seed": 0, "device": "cpu"}
    )
    assert result["status"] == "completed", result
    return result["run_id"]


def test_runs_and_explain_share_a_report_and_explain_shows_each_class(digits_run):
    at = open_app("runs", query_params={"run": str(digits_run)})
    assert at.button(key=state.share_report_key("runs", "prepare")).label == "Share a report"
    at = open_app("explain", query_params={"run": str(digits_run)})
    assert [t.label for t in at.tabs] == ["One prediction", PER_CLASS]
    assert not at.get("download_button")  # made only when asked: it takes seconds
    at.button(key=state.share_report_key("explain", "prepare")).click().run()
    assert not at.exception, at.exception
    (download,) = at.get("download_button")
    assert f"run {digits_run}" in download.proto.label
    at.session_state[state.EXPLAIN_TABS] = PER_CLASS
    at.run()
    assert not at.exception, at.exception
    said = [c.value for c in at.caption if c.value.startswith("It says")]
    assert len(said) == 10  # one card per digit
    assert len(at.get("plotly_chart")) == 10
