"""The report's pictures (and the Explain page's per-class tab): measured data in, Plotly out.

Per-sample pictures come from core.explain.figures, as on the Explain page. Names from the data
(classes, columns, words) are HTML-escaped before they reach Plotly, which reads a few tags.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from core.explain.figures import (
    FONT,
    explanation_figure,
    feature_bars_figure,
    image_overlay_figure,
    signal_bars_figure,
)
from core.report.examples import Example
from core.report.outcomes import Outcomes
from core.report.profiles import ClassProfile

CLASS_FIGURE_HEIGHT = 260


def _small(fig: go.Figure, height: int) -> go.Figure:
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 36, "b": 10})
    return fig


def class_figure(
    profile: ClassProfile, modality: str, *, regression: bool = False
) -> go.Figure | None:
    """The class's averaged attribution: a heatmap over its average picture, bars per time
    step over its average signal, bars per column or per word. None when nothing was averaged."""
    if profile.count == 0:
        return None
    name = html.escape(profile.name)
    if modality == "image":
        fig = image_overlay_figure(
            profile.average_input, profile.scores, title=f"{name}: average picture, what counts"
        )
        return _small(fig, CLASS_FIGURE_HEIGHT)
    if modality == "signal":
        fig = signal_bars_figure(
            profile.average_input, profile.scores, title=f"{name}: average signal, what counts"
        )
        return _small(fig, CLASS_FIGURE_HEIGHT + 40)
    if modality == "tabular":
        names = [c.name for c in profile.columns]
        values = [c.weight * c.direction for c in profile.columns]
        axis = "lower values ← · → higher values push it " + ("up" if regression else "towards")
        return feature_bars_figure(names, np.asarray(values), title=name, axis_title=axis)
    words = [w.word for w in profile.words]
    pushes = np.asarray([w.push for w in profile.words], dtype=np.float64)
    axis = "pushes it down  ←  0  →  up" if regression else "away  ←  0  →  towards"
    if not words:
        return None
    return feature_bars_figure(words, pushes, title=name, axis_title=axis)


def mistakes_figure(outcomes: Outcomes, class_names: list[str]) -> go.Figure:
    """Only the mistakes: rows the true class, columns what the model said; the diagonal (the
    right answers) left blank so the mistakes are what one sees."""
    counts = outcomes.matrix.astype(np.float64)
    np.fill_diagonal(counts, np.nan)
    counts[counts == 0] = np.nan  # blank: only the mistakes made are coloured
    names = [html.escape(n) for n in class_names]
    text = np.where(np.isnan(counts), "", np.nan_to_num(counts).astype(np.int64).astype(str))
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            colorscale="Reds",
            zmin=0,
            showscale=False,
            xgap=1,
            ygap=1,
            hovertemplate="really %{y}, it says %{x}: %{z} times<extra></extra>",
        )
    )
    side = 120 + 26 * len(names)
    fig.update_layout(
        height=min(600, max(260, side)),
        width=min(640, max(300, side + 60)),
        margin={"l": 10, "r": 10, "t": 36, "b": 10},
        font=FONT,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="#FFFFFF",
        title={"text": "Mistakes: really (row), it says (column)", "x": 0, "font": {"size": 14}},
    )
    fig.update_xaxes(title_text="it says", type="category", showgrid=False)
    fig.update_yaxes(title_text="really", type="category", autorange="reversed", showgrid=False)
    return fig


def values_figure(outcomes: Outcomes, target: str) -> go.Figure:
    """Regression: predicted against true values, with the line where they would be equal."""
    truth, predicted = outcomes.truth, outcomes.predicted
    low = float(min(truth.min(), predicted.min())) if len(truth) else 0.0
    high = float(max(truth.max(), predicted.max())) if len(truth) else 1.0
    name = html.escape(target)
    fig = go.Figure(
        [
            go.Scatter(
                x=[low, high],
                y=[low, high],
                mode="lines",
                line={"color": "#ADB5BD", "dash": "dash"},
                name="exactly right",
                hoverinfo="skip",
            ),
            go.Scatter(
                x=truth,
                y=predicted,
                mode="markers",
                marker={"color": "#4C6EF5", "size": 6, "opacity": 0.7},
                name="test samples",
                hovertemplate="true %{x:.4g}, predicted %{y:.4g}<extra></extra>",
            ),
        ]
    )
    fig.update_layout(
        height=340,
        width=420,
        margin={"l": 10, "r": 10, "t": 36, "b": 10},
        font=FONT,
        title={"text": f"Predicted against true {name}", "x": 0, "font": {"size": 14}},
        legend={"orientation": "h", "y": -0.25},
    )
    fig.update_xaxes(title_text="true value")
    fig.update_yaxes(title_text="predicted")
    return fig


def example_figure(example: Example, *, regression: bool = False) -> go.Figure:
    """The Explain page's picture for one example (for a value, the bars say up and down)."""
    if regression and example.modality == "tabular":
        return feature_bars_figure(
            list(example.human),
            example.attribution,
            axis_title="pushes the value down  ←  0  →  up",
        )
    fig = explanation_figure(
        example.modality,
        example.human,
        example.attribution,
        tokens=example.tokens,
    )
    return _small(fig, fig.layout.height or 300) if example.modality == "image" else fig
