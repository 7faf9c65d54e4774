"""The Compress page: the same choices as `studio compress`, the before/after table, the
sentence on attributions, a link that opens the smaller spec in Build, and the fine-tune run."""

from __future__ import annotations

from app import spec_editor, state
from core import runs
from tests.pages.conftest import open_app
from tests.specs import NARROW_DIGITS_CNN

FAST = {"steps": 6, "batch_size": 64, "device": "cpu", "log_every": 3}


def test_without_a_finished_run_the_page_says_what_to_do():
    at = open_app("compress")
    assert any("No finished run yet" in info.value for info in at.info)


def test_structured_pruning_with_a_fine_tune_from_the_page():
    parent = runs.train_run_foreground(spec=NARROW_DIGITS_CNN, dataset="digits", config=FAST)
    at = open_app("compress")
    assert at.selectbox(key=state.COMPRESS_RUN).value == parent["run_id"]
    at.radio(key=state.COMPRESS_METHOD).set_value("structured")
    at.slider(key=state.COMPRESS_RATIO).set_value(0.5)
    at.number_input(key=state.COMPRESS_EPOCHS).set_value(1)
    at.button(key=state.COMPRESS_GO).click().run(timeout=180)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    # the table is drawn and the sentence says how many test digits keep their regions
    assert at.get("plotly_chart")
    assert any("relies on the same regions for" in md.value for md in at.markdown)
    assert any("conv1" in md.value and "8 → 4" in md.value for md in at.markdown)
    # the fine-tune is a queued child run of the parent
    children = runs.children_of(parent["run_id"])
    assert len(children) == 1 and children[0].status == "queued"
    assert children[0].origin["kind"] == "compress"
    # the Build link carries the smaller spec
    link = next(link for link in at.get("page_link") if "Build" in link.proto.label)
    encoded = link.proto.query_string.removeprefix(f"{state.QP_DRAFT}=")
    assert spec_editor.decode(encoded)["layers"][0]["out_channels"] == 4
    # a reload shows the same table (read from the compression's folder)
    again = open_app("compress")
    assert again.get("plotly_chart")
