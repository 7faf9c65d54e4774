"""Explain page, through Streamlit's AppTest, on real runs trained on digits (and mnist1d)."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest

from app import state
from core import runs
from core.templates import get_template
from tests.pages.conftest import open_app

DRAWN = "Draw one yourself"


def plain(text: str) -> str:
    return text.replace("\\", "")  # the page escapes markdown in what it quotes


def headline(at) -> str:
    return plain(next(m.value for m in at.markdown if m.value.startswith("#### ")))


def train(template: str, dataset: str, **config) -> int:
    result = runs.train_run_foreground(
        spec=get_template(template).spec, dataset=dataset, config={"seed": 0, **config}
    )
    assert result["status"] == "completed", result
    return result["run_id"]


@pytest.fixture
def digits_run() -> int:
    return train("digits-cnn", "digits", epochs=2)


def test_pick_a_run_and_a_sample_read_one_sentence_see_the_pictures(digits_run):
    at = open_app("explain", query_params={"run": str(digits_run)})
    assert headline(at).startswith("#### The model")
    assert "relied most on" in headline(at) or "looked most at" in headline(at)
    assert "Integrated Gradients" not in headline(at)  # the sentence speaks of the model
    # the sentence is said once, not again under each picture
    sentence_end = headline(at).split(". ", 1)[-1]
    assert not any(sentence_end in plain(c.value) for c in at.caption)
    assert at.multiselect(key=state.EXPLAIN_METHODS).value == ["integrated_gradients", "grad_cam"]
    # the sample itself, one picture per method, the top-3 bars
    assert len(at.get("plotly_chart")) == 4

    at.number_input(key=state.EXPLAIN_INDEX).set_value(5).run()
    assert not at.exception, at.exception
    assert "test sample #5" in plain(" ".join(c.value for c in at.caption))

    at.multiselect(key=state.EXPLAIN_METHODS).set_value(["saliency"]).run()
    at.toggle(key=state.EXPLAIN_SANITY).set_value(False).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 3

    # a person who is not an engineer filters to a mistake and reads why
    at.radio(key=state.EXPLAIN_SOURCE).set_value("Only the ones it got wrong").run()
    assert not at.exception, at.exception
    if not (at.success and "every test sample right" in at.success[0].value):
        assert "it is actually" in headline(at)


def fake_canvas(drawing: np.ndarray | None) -> SimpleNamespace:
    """The canvas package, answering as the browser would: AppTest cannot draw."""

    def st_canvas(**kwargs):
        fake_canvas.seen = kwargs
        objects = [{"type": "path"}] if drawing is not None else []
        return SimpleNamespace(json_data={"objects": objects}, image_data=drawing)

    return SimpleNamespace(st_canvas=st_canvas)


def test_a_digit_drawn_on_the_canvas_is_explained_like_a_test_sample(digits_run, monkeypatch):
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake_canvas(None))
    at = open_app("explain", query_params={"run": str(digits_run)})
    at.radio(key=state.EXPLAIN_SOURCE).set_value(DRAWN).run()
    assert not at.exception, at.exception
    assert "Draw on the square" in at.info[0].value
    assert fake_canvas.seen["stroke_color"] == "#FFFFFF"  # digits are white ink on black
    assert fake_canvas.seen["background_color"] == "#000000"
    assert at.slider(key=state.EXPLAIN_STROKE).value == 30

    one = np.zeros((280, 280, 4), dtype=np.uint8)
    one[:, :, 3] = 255
    one[30:250, 125:160, :3] = 255  # a vertical stroke: a "1"
    monkeypatch.setitem(sys.modules, "streamlit_drawable_canvas", fake_canvas(one))
    at.run()
    assert not at.exception, at.exception
    assert "Explaining your drawing." in [plain(c.value) for c in at.caption]
    assert headline(at).startswith("#### The model")
    assert "it is actually" not in headline(at)  # nobody said what the drawing is
    assert len(at.get("plotly_chart")) == 4

    before = fake_canvas.seen["key"]
    at.button(key=state.EXPLAIN_CLEAR).click().run()  # a new, empty canvas
    assert fake_canvas.seen["key"] != before


def test_signals_cannot_be_uploaded_or_drawn(monkeypatch):
    run_id = train("mnist1d-cnn", "mnist1d", epochs=1)
    at = open_app("explain", query_params={"run": str(run_id)})
    assert not at.exception, at.exception
    options = at.radio(key=state.EXPLAIN_SOURCE).options
    assert DRAWN not in options and "Upload an image" not in options
    assert headline(at).startswith("#### The model")


def test_no_trained_run_yet_says_what_to_do():
    at = open_app("explain")
    assert "No trained run yet" in at.info[0].value


def upload(tmp_path, kind: str, name: str, lines: list[str]) -> str:
    from core.data import register_upload

    path = tmp_path / f"{name}.csv"
    path.write_text("\n".join(lines))
    return register_upload(kind, path, name=name).name


def test_a_person_types_their_own_sentence_and_the_prediction_follows(tmp_path):
    words = {"good": ["great fun", "lovely good film", "good good"], "bad": ["awful", "bad dull"]}
    rows = ["text,label"] + [
        f"{sentence} {i},{label}" for i in range(30) for label, s in words.items() for sentence in s
    ]
    dataset = upload(tmp_path, "text", "reviews", rows)
    spec = {
        "layers": [
            {"type": "Embedding", "embedding_dim": 8},
            {"type": "SequencePool", "mode": "mean"},
            {"type": "Linear"},
        ]
    }
    result = runs.train_run_foreground(spec=spec, dataset=dataset, config={"epochs": 3})
    at = open_app("explain", query_params={"run": str(result["run_id"])})
    at.radio(key=state.EXPLAIN_SOURCE).set_value("Type your own sentence").run()
    assert not at.exception, at.exception
    at.text_input(key=state.EXPLAIN_SENTENCE).set_value("awful dull awful").run()
    assert not at.exception, at.exception
    assert "Explaining your sentence." in [plain(c.value) for c in at.caption]
    first = headline(at)
    at.text_input(key=state.EXPLAIN_SENTENCE).set_value("lovely great fun").run()
    assert headline(at) != first  # another sentence, another answer
    assert '"lovely"' in headline(at) or '"great"' in headline(at) or '"fun"' in headline(at)


def test_a_person_edits_a_table_row_and_the_bars_are_coloured_by_sign(tmp_path):
    rows = ["a,b,label"] + [
        f"{i % 7},{(i * 3) % 5},{'yes' if i % 7 > 3 else 'no'}" for i in range(80)
    ]
    dataset = upload(tmp_path, "csv", "survey", rows)
    spec = {"layers": [{"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear"}]}
    result = runs.train_run_foreground(
        spec=spec, dataset=dataset, config={"epochs": 5, "batch_size": 16}
    )
    at = open_app("explain", query_params={"run": str(result["run_id"])})
    at.radio(key=state.EXPLAIN_SOURCE).set_value("Edit a row").run()
    assert not at.exception, at.exception
    assert "Explaining your row." in [plain(c.value) for c in at.caption]
    import plotly.io

    bars = plotly.io.from_json(at.get("plotly_chart")[0].proto.spec).data[0]
    colours = list(bars.marker.color)
    assert set(colours) <= {"#D7191C", "#2C7BB6"} and len(colours) == 2
    assert all((c == "#D7191C") == (x >= 0) for c, x in zip(colours, bars.x, strict=True))
