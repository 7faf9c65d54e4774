"""Lay a report out as one self-contained HTML page.

Nothing is fetched: plotly.js is inlined once, every figure is its JSON inlined next to its
place, and a Content-Security-Policy forbids the page any network request. Every piece of text
from the data or the person (names, class names, column names, words) goes through `esc`;
figure JSON is written so that no "<" can close its script element.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable

import plotly.graph_objects as go

from core.explain import METHOD_TITLES
from core.report import figures, words
from core.report.build import ReportData
from core.report.profiles import value_name

# no network of any kind; inline scripts and styles; pictures from data: and blob: only
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; connect-src 'none'; form-action 'none'; "
    "base-uri 'none'"
)
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["toImage"]}
STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1F2430;
  max-width: 980px; margin: 0 auto; padding: 24px 20px 60px; line-height: 1.5; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
h2 { margin-top: 2.4rem; border-bottom: 1px solid #DEE2E6; padding-bottom: 0.3rem; }
h3 { margin-bottom: 0.2rem; }
.facts { color: #5C6370; font-size: 0.92rem; }
.lead { font-size: 1.12rem; }
.classes { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
  gap: 14px; }
.class, .example { border: 1px solid #DEE2E6; border-radius: 8px; padding: 10px 14px; }
.example.wrong { border-left: 5px solid #E03131; }
.example.right { border-left: 5px solid #2F9E44; }
.sentence { font-size: 1.05rem; }
.warning { color: #A61E4D; }
.legend, footer { color: #5C6370; font-size: 0.9rem; }
.trust li { margin-bottom: 0.6rem; }
"""


def esc(text: object) -> str:
    """Text from the data or a person, as text: never markup."""
    return html.escape(str(text), quote=True)


def figure_json(fig: go.Figure) -> str:
    """The figure as a JS literal that cannot end its <script> element early."""
    text = fig.to_json()
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


class _Figures:
    """Numbered figure slots; each draws its own inlined JSON once plotly.js has loaded."""

    def __init__(self) -> None:
        self.count = 0

    def place(self, fig: go.Figure | None, label: str) -> str:
        if fig is None:
            return ""
        self.count += 1
        slot = f"figure-{self.count}"
        config = json.dumps(PLOTLY_CONFIG)
        return (
            f'<div class="figure" id="{slot}" role="img" aria-label="{esc(label)}"></div>\n'
            f"<script>(function () {{ var f = {figure_json(fig)}; "
            f'Plotly.newPlot("{slot}", f.data, f.layout, {config}); }})();</script>'
        )


def _paragraphs(sentences: Iterable[str], css: str = "") -> str:
    attribute = f' class="{css}"' if css else ""
    return "\n".join(f"<p{attribute}>{esc(s)}</p>" for s in sentences if s)


def _header(data: ReportData) -> str:
    facts = [f"dataset {data.dataset.name}"]
    if data.run:
        facts.insert(0, f"run {data.run['id']}")
        facts.append(f"{data.run['epoch']} epochs trained ({data.run['status']})")
    facts.append(f"made {data.created:%Y-%m-%d %H:%M} UTC by Model Studio")
    return (
        f'<header><h1>{esc(data.title)}</h1><p class="facts">{esc(" · ".join(facts))}</p></header>'
    )


def _how_well(data: ReportData, place: _Figures) -> str:
    lead = _paragraphs([words.what_it_does(data.dataset)], "lead")
    body = _paragraphs(words.how_well(data.dataset, data.outcomes))
    section = f'<section id="how-well"><h2>What it does and how well</h2>{lead}{body}'
    if data.outcomes.matrix is None:
        target = value_name(data.dataset)
        section += place.place(figures.values_figure(data.outcomes, target), "predicted vs true")
        return section + "</section>"
    section += "</section>"
    mistakes = _paragraphs(words.mistakes(data.dataset, data.outcomes))
    picture = ""
    if data.outcomes.correct < data.outcomes.total:
        picture = place.place(
            figures.mistakes_figure(data.outcomes, list(data.dataset.class_names)),
            "the mistakes, by true class and answer",
        )
    return (
        section
        + f'<section id="mistakes"><h2>Its most common mistakes</h2>{mistakes}{picture}</section>'
    )


def _classes(data: ReportData, place: _Figures) -> str:
    regression = data.outcomes.matrix is None
    dataset = data.dataset
    heading = (
        f"What moves {words.quoted(value_name(dataset))} up or down"
        if regression
        else "What it looks for in each class"
    )
    method = METHOD_TITLES[data.profiles.method]
    legend = (
        f"Each picture averages {method} attributions over test samples ({data.profiles.n_steps} "
        "integration steps). "
        + (
            "Red: what pushes the prediction towards the class; blue: what pushes it away."
            if not regression
            else "For pictures and signals, darker means more influence either way; bars show "
            "the direction."
        )
    )
    cards = []
    for profile in data.profiles.classes:
        title = (
            f"What moves {words.quoted(profile.name)}"
            if regression
            else f"When it says {words.quoted(profile.name)}"
        )
        sentences = [] if regression else [words.class_record(dataset, data.outcomes, profile)]
        sentences.append(words.looks_for(dataset, profile, regression))
        picture = place.place(
            figures.class_figure(profile, dataset.modality, regression=regression),
            f"what the model looks for: {profile.name}",
        )
        cards.append(
            f'<section class="class" data-class="{esc(profile.name)}">'
            f"<h3>{esc(title)}</h3>{_paragraphs(sentences)}{picture}</section>"
        )
    return (
        f'<section id="classes"><h2>{esc(heading)}</h2><p class="legend">{esc(legend)}</p>'
        f'<div class="classes">{"".join(cards)}</div></section>'
    )


def _examples(data: ReportData, place: _Figures) -> str:
    if not data.examples:
        return ""
    articles = []
    for example in data.examples:
        verdict = "right" if example.correct else "wrong"
        warnings = _paragraphs(example.warnings, "warning")
        picture = place.place(
            figures.example_figure(example, regression=data.outcomes.matrix is None),
            f"test sample {example.index}",
        )
        articles.append(
            f'<article class="example {verdict}"><h3>{esc(f"Test sample #{example.index}: {example.headline}")}</h3>'
            f'<p class="sentence">{esc(example.sentence)}</p>{warnings}{picture}</article>'
        )
    intro = (
        "Each sentence was measured: the studio hid the tenth of the input the explanation "
        "points at and asked the model again."
    )
    return (
        '<section id="examples"><h2>Example predictions, right and wrong</h2>'
        f'<p class="legend">{esc(intro)}</p>{"".join(articles)}</section>'
    )


def _trust(data: ReportData) -> str:
    modality = data.dataset.modality
    sentences = [
        words.randomization_sentence(data.randomization, modality),
        words.faithfulness_sentence(data.faithfulness, data.dataset),
        *words.robustness_sentences(data.robustness, modality),
    ]
    items = "".join(f"<li>{esc(s)}</li>" for s in sentences)
    return f'<section id="trust"><h2>How far to trust this</h2><ul class="trust">{items}</ul></section>'


def render_report(data: ReportData) -> str:
    """The whole page: plotly.js once, then the sections with their figures inline."""
    from plotly.offline import get_plotlyjs

    place = _Figures()
    body = "\n".join(
        [
            _header(data),
            _how_well(data, place),
            _classes(data, place),
            _examples(data, place),
            _trust(data),
            "<footer><p>This file holds everything it shows: it needs no network and no "
            "studio to open.</p></footer>",
        ]
    )
    script = f"<script>{get_plotlyjs()}</script>" if place.count else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(data.title)}</title><style>{STYLE}</style>{script}</head>"
        f"<body>{body}</body></html>\n"
    )
