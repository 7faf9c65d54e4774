"""The report of each kind of data: one section per class, measured sentences, nothing fetched,
text from the data escaped."""

from __future__ import annotations

import html
import json
import re

import pytest

from core.report import build_report, render_report
from tests.core.report.conftest import TEXT_CLASSES

MAX_BYTES = 6_000_000  # plotly.js (~4.8 MB) once, and the figures


def without_plotly_js(page: str) -> str:
    """The page minus the inlined plotly.js library (its own code is not ours to check)."""
    start = page.index("<script>")
    return page[:start] + page[page.index("</script>", start) + len("</script>") :]


def class_sections(page: str) -> list[str]:
    return re.findall(r'<section class="class" data-class="([^"]*)">', page)


def report(trained, samples: int = 2) -> tuple[str, object]:
    data = build_report(trained.model, trained.dataset, samples=samples)
    page = render_report(data)
    assert len(page.encode()) < MAX_BYTES
    assert page.count("<script>") == 1 + page.count("Plotly.newPlot(")  # plotly.js inlined once
    ours = without_plotly_js(page)
    assert not re.search(r"""(src|href)\s*=|https?://|url\(""", ours)  # nothing to fetch
    return ours, data


@pytest.mark.parametrize("kind", ["image_run", "signal_run", "table_run"])
def test_a_classifier_report_has_a_section_per_class_and_measured_sentences(kind, request):
    trained = request.getfixturevalue(kind)
    page, data = report(trained)
    names = list(trained.dataset.class_names)
    assert class_sections(page) == [html.escape(n) for n in names]
    total, correct = data.outcomes.total, data.outcomes.correct
    assert f"for {correct} of {total} (" in page  # "names the right class for 57 of 60 (95%)"
    for example in data.examples:
        assert html.escape(example.sentence) in page
        assert example.sentence.startswith("The model")
    assert "Randomization check" in page and "Faithfulness check" in page
    assert "Infidelity (Captum)" in page and "sensitivity_max" in page


def test_the_image_report_says_where_the_model_looks(image_run):
    page, data = report(image_run)
    assert "it relies most on the top-left corner" in page
    # the deciding block really is what the model needs: hiding it hurts far more than chance
    assert data.faithfulness.top_change > 2 * data.faithfulness.random_change


def test_a_text_report_escapes_class_names_and_lists_words(text_run):
    page, data = report(text_run)
    assert class_sections(page) == [html.escape(n) for n in TEXT_CLASSES]
    assert "<i>good</i>" not in page and "&lt;i&gt;good&lt;/i&gt;" in page
    assert "bad &amp; sad" in page
    assert "the words that push most towards" in page and "“great”" in page
    assert "not measured for text" in page  # Captum's nudges need numbers, not words


def test_a_regression_report_says_what_moves_the_value(regression_run):
    page, data = report(regression_run, samples=4)
    assert class_sections(page) == ["price"]
    assert "is off by" in page and "Always predicting the average" in page
    assert "higher “key” pushes price up" in page
    assert len(data.examples) == 4
    assert all("The model predicts" in e.sentence for e in data.examples)
    assert "moves the prediction of price by" in page


def test_figure_json_cannot_close_its_script_element():
    import plotly.graph_objects as go

    from core.report.page import figure_json

    hostile = "</script><script>alert(1)</script>"
    text = figure_json(go.Figure(go.Bar(x=[hostile], y=[1]), layout={"title": {"text": hostile}}))
    assert "<" not in text and ">" not in text
    assert json.loads(text)["layout"]["title"]["text"] == hostile  # still the same figure
