"""Pure figure builders for explanations: arrays in, a Plotly figure out (no torch, no Streamlit).

They live in core so that the pages and the shareable report (core/report) draw the same
pictures; app/figures_explain.py re-exports them for the pages.

Attributions arrive shaped like the input: (C, H, W) or (H, W) for images, (C, T) or (T,) for
signals, (T,) for text. Channels are summed — signed evidence adds up — before drawing.
Red means "pushed the model towards its answer", blue "pushed it away".
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

FONT = {"family": "sans-serif", "size": 13, "color": "#1F2430"}  # every chart in the studio

SIGNED_SCALE = "RdBu_r"  # blue (against) - white (nothing) - red (for)
# Over a picture, "nothing" is see-through so the picture a person recognises stays visible,
# and colour grows with the evidence: blue (against) - clear (nothing) - red (for).
SIGNED_OVERLAY_SCALE = [
    [0.0, "rgba(33,102,172,0.9)"],
    [0.35, "rgba(67,147,195,0.45)"],
    [0.5, "rgba(255,255,255,0)"],
    [0.65, "rgba(244,109,67,0.45)"],
    [1.0, "rgba(215,25,28,0.9)"],
]
POSITIVE_SCALE = [
    [0.0, "rgba(255,255,255,0)"],
    [0.3, "rgba(254,224,139,0.2)"],
    [0.65, "rgba(244,109,67,0.55)"],
    [1.0, "rgba(215,25,28,0.9)"],
]
SKIPPED_TOKENS = ("<pad>",)
TOWARDS = "#D7191C"  # red: pushed the model towards its answer
AWAY = "#2C7BB6"  # blue: pushed it away


def base_layout(
    fig: go.Figure, *, height: int, title: str | None = None, untitled_top: int = 16
) -> go.Figure:
    """The studio's look for every chart (app/figures.py builds its own on this one)."""
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40 if title else untitled_top, "b": 10},
        font=FONT,
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="#FFFFFF",
        title={"text": title, "x": 0, "font": {"size": 15}} if title else None,
    )
    return fig


def spatial_map(attribution: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) -> (H, W), channels summed."""
    values = np.asarray(attribution, dtype=np.float64)
    return values.sum(axis=0) if values.ndim == 3 else values


def _color_range(values: np.ndarray) -> tuple[float, float, bool]:
    """(zmin, zmax, signed): symmetric around 0 when there is negative evidence."""
    peak = float(np.abs(values).max()) or 1.0
    signed = bool((values < -1e-12 * peak).any())
    return (-peak, peak, True) if signed else (0.0, peak, False)


def _rgb(image: np.ndarray) -> np.ndarray:
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return pixels[:, :, :3].astype(np.uint8)


def image_overlay_figure(
    image: np.ndarray,
    attribution: np.ndarray,
    *,
    title: str | None = None,
    height: int = 320,
) -> go.Figure:
    """The picture a person recognises (H, W, C uint8) with the attribution heatmap over it;
    pixels with no evidence stay clear, so the picture shows through."""
    heat = spatial_map(attribution)
    pixels = _rgb(image)
    if heat.shape != pixels.shape[:2]:
        raise ValueError(
            f"attribution of shape {heat.shape} does not cover an image of {pixels.shape[:2]}"
        )
    zmin, zmax, signed = _color_range(heat)
    fig = go.Figure(go.Image(z=pixels, hoverinfo="skip"))
    fig.add_trace(
        go.Heatmap(
            z=heat,
            zmin=zmin,
            zmax=zmax,
            colorscale=SIGNED_OVERLAY_SCALE if signed else POSITIVE_SCALE,
            showscale=False,
            hovertemplate="row %{y}, column %{x}: %{z:.3g}<extra></extra>",
        )
    )
    base_layout(fig, height=height, title=title)
    fig.update_xaxes(visible=False, showgrid=False)
    fig.update_yaxes(visible=False, showgrid=False, scaleanchor="x", autorange="reversed")
    return fig


def sample_figure(image: np.ndarray, *, title: str | None = None, height: int = 320) -> go.Figure:
    """The picture itself (H, W, C uint8), large and sharp, as the model was shown it."""
    fig = go.Figure(go.Image(z=_rgb(image), hoverinfo="skip"))
    base_layout(fig, height=height, title=title)
    fig.update_xaxes(visible=False, showgrid=False)
    fig.update_yaxes(visible=False, showgrid=False, scaleanchor="x", autorange="reversed")
    return fig


def signal_bars_figure(
    signal: np.ndarray,
    attribution: np.ndarray,
    *,
    title: str | None = None,
    height: int = 300,
) -> go.Figure:
    """The 1-D signal as a line, with one attribution bar per time step under it."""
    values = np.asarray(signal, dtype=np.float64).reshape(-1)
    scores = np.asarray(attribution, dtype=np.float64)
    scores = scores.sum(axis=0) if scores.ndim == 2 else scores.reshape(-1)
    if scores.shape[0] != values.shape[0]:
        raise ValueError(
            f"{scores.shape[0]} attribution values for a signal of {values.shape[0]} steps"
        )
    steps = np.arange(values.shape[0])
    colors = np.where(scores >= 0, TOWARDS, AWAY)
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=steps,
            y=scores,
            marker={"color": colors.tolist()},
            opacity=0.6,
            name="attribution",
            yaxis="y2",
            hovertemplate="t=%{x}: %{y:.3g}<extra>attribution</extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=steps,
            y=values,
            mode="lines",
            line={"color": "#1F2430", "width": 2},
            name="signal",
            hovertemplate="t=%{x}: %{y:.3g}<extra>signal</extra>",
        )
    )
    base_layout(fig, height=height, title=title)
    fig.update_layout(
        xaxis={"title": "time step"},
        yaxis={"title": "signal"},
        yaxis2={"title": "attribution", "overlaying": "y", "side": "right", "showgrid": False},
        # under the plot: above it, the legend sat on the title
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
    )
    fig.update_layout(height=height + 40, margin={"b": 70})
    return fig


def token_highlight_figure(
    tokens: Sequence[str],
    scores: Sequence[float] | np.ndarray,
    *,
    title: str | None = None,
    per_row: int = 10,
    skip: Sequence[str] = SKIPPED_TOKENS,
) -> go.Figure:
    """Words in reading order, each cell coloured by its score (padding left out)."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(tokens) != values.shape[0]:
        raise ValueError(f"{len(tokens)} tokens but {values.shape[0]} scores")
    kept = [(t, v) for t, v in zip(tokens, values, strict=True) if t not in skip]
    rows = max(1, -(-len(kept) // per_row))
    z = np.full((rows, per_row), np.nan)
    text = np.full((rows, per_row), "", dtype=object)
    for position, (token, value) in enumerate(kept):
        row, col = divmod(position, per_row)
        z[row, col] = value
        text[row, col] = html.escape(token)  # data, not markup: Plotly reads a few HTML tags
    zmin, zmax, signed = _color_range(np.nan_to_num(z))
    fig = go.Figure(
        go.Heatmap(
            z=z,
            text=text,
            texttemplate="%{text}",
            zmin=zmin,
            zmax=zmax,
            colorscale=SIGNED_SCALE if signed else "Reds",
            xgap=3,
            ygap=3,
            showscale=False,
            hovertemplate="%{text}: %{z:.3g}<extra></extra>",
        )
    )
    base_layout(fig, height=60 + 44 * rows, title=title)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    return fig


def attention_map_figure(
    weights: np.ndarray,
    *,
    tokens: Sequence[str] | None = None,
    head: int | None = None,
    title: str | None = None,
    height: int = 380,
) -> go.Figure:
    """Who attends to whom: rows are the steps looking, columns the steps looked at.

    weights (heads, time, time) or (time, time); heads are averaged unless `head` is given.
    """
    values = np.asarray(weights, dtype=np.float64)
    if values.ndim == 3:
        values = values[head] if head is not None else values.mean(axis=0)
    if values.ndim != 2:
        raise ValueError(
            f"attention weights must be (heads, time, time) or (time, time); got {values.shape}"
        )
    labels = (
        [html.escape(t) for t in tokens]
        if tokens is not None
        else [str(i) for i in range(values.shape[1])]
    )
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=labels[: values.shape[1]],
            y=labels[: values.shape[0]],
            zmin=0.0,
            colorscale="Blues",
            colorbar={"title": "weight"},
            hovertemplate="%{y} looks at %{x}: %{z:.2f}<extra></extra>",
        )
    )
    base_layout(fig, height=height, title=title)
    fig.update_xaxes(title="looked at", type="category")
    fig.update_yaxes(title="looking", type="category", autorange="reversed")
    return fig


def probability_bars_figure(
    probabilities: Sequence[Mapping[str, float | str]],
    *,
    title: str | None = None,
    height: int = 160,
) -> go.Figure:
    """The top classes as horizontal bars, the most likely on top."""
    labels = [html.escape(str(p["label"])) for p in probabilities]
    values = [float(p["probability"]) for p in probabilities]
    colors = ["#4C6EF5"] + ["#ADB5BD"] * (len(values) - 1)
    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker={"color": colors},
            text=[f"{v:.0%}" for v in values],
            textposition="auto",
            hovertemplate="%{y}: %{x:.1%}<extra></extra>",
        )
    )
    base_layout(fig, height=height, title=title)
    fig.update_xaxes(range=[0, 1], tickformat=".0%", gridcolor="#EEF0F4")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def explanation_figure(
    modality: str,
    human: object,
    attribution: np.ndarray,
    *,
    tokens: Sequence[str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """The right picture for the modality: heatmap over an image, bars over a signal, highlighted
    words for text, bars per feature for a table."""
    if modality == "image":
        return image_overlay_figure(np.asarray(human), attribution, title=title)
    if modality == "signal":
        return signal_bars_figure(np.asarray(human), attribution, title=title)
    if modality == "text":
        words = list(tokens) if tokens is not None else str(human).split()
        return token_highlight_figure(words, attribution, title=title)
    names = list(human) if isinstance(human, Mapping) else None
    return feature_bars_figure(names, attribution, title=title)


def feature_bars_figure(
    names: Sequence[str] | None,
    attribution: np.ndarray,
    *,
    title: str | None = None,
    axis_title: str = "pushes away  ←  0  →  pushes towards the answer",
) -> go.Figure:
    """One bar per feature of a table row, coloured by sign as every other picture is: red
    pushed towards the answer, blue away from it; the largest effects on top. `axis_title`
    says what the sign means where it means something else (a report's per-class view)."""
    scores = np.asarray(attribution, dtype=np.float64).reshape(-1)
    labels = (
        [html.escape(str(n)) for n in names]
        if names is not None
        else [f"feature {i}" for i in range(scores.size)]
    )
    if len(labels) != scores.size:
        raise ValueError(f"{len(labels)} feature names but {scores.size} attribution values")
    order = np.argsort(-np.abs(scores), kind="stable")
    fig = go.Figure(
        go.Bar(
            x=scores[order].tolist(),
            y=[labels[i] for i in order],
            orientation="h",
            marker={"color": np.where(scores[order] >= 0, TOWARDS, AWAY).tolist()},
            hovertemplate="%{y}: %{x:.3g}<extra></extra>",
        )
    )
    base_layout(fig, height=80 + 24 * scores.size, title=title)
    fig.update_yaxes(type="category", autorange="reversed")
    fig.update_xaxes(title=axis_title, zeroline=True)
    return fig
