"""Explain page, through Streamlit's AppTest, on a real run trained for two epochs on digits."""

from __future__ import annotations

from core import runs
from core.templates import get_template
from tests.pages.conftest import open_app


def headline(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("#### "))


def test_pick_a_run_and_a_sample_read_one_sentence_see_the_pictures():
    result = runs.train_run_foreground(
        spec=get_template("digits-cnn").spec, dataset="digits", config={"epochs": 2, "seed": 0}
    )
    assert result["status"] == "completed", result
    at = open_app("explain", query_params={"run": str(result["run_id"])})
    assert headline(at).startswith("#### The model")
    assert "relied most on" in headline(at) or "points most at" in headline(at)
    assert at.multiselect(key="explain.methods").value == ["integrated_gradients", "grad_cam"]
    assert len(at.get("plotly_chart")) == 3  # the top-3 bars and one picture per method

    at.number_input(key="explain.index").set_value(5).run()
    assert not at.exception, at.exception
    assert "test sample #5" in " ".join(c.value for c in at.caption)

    at.multiselect(key="explain.methods").set_value(["saliency"]).run()
    at.toggle(key="explain.sanity").set_value(False).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2

    # a person who is not an engineer filters to a mistake and reads why
    at.radio(key="explain.source").set_value("Only the ones it got wrong").run()
    assert not at.exception, at.exception
    if not (at.success and "every test sample right" in at.success[0].value):
        assert "it is actually" in headline(at)


def test_no_trained_run_yet_says_what_to_do():
    at = open_app("explain")
    assert "No trained run yet" in at.info[0].value
