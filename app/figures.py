"""Pure figure builders: plain data in, a Plotly figure out. No Streamlit, no database, no torch.

Every chart in the studio is drawn here so it can be tested (and benchmarked) on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.formatting import count_text, shape_text
from app.plain_text import html_escape
from core import metric_catalog as catalog
from core.explain.figures import base_layout as shared_layout

FAMILY_COLORS = {  # fill, outline
    "CNN": ("#DBE4FF", "#4C6EF5"),
    "RNN": ("#D3F9D8", "#2F9E44"),
    "Attention": ("#FFE8CC", "#E8590C"),
    "Common": ("#F1F3F5", "#868E96"),
}
INPUT_COLORS = ("#FFFFFF", "#1F2430")
ERROR_COLORS = ("#FFE3E3", "#E03131")
UNREACHED_COLORS = ("#FAFAFA", "#CED4DA")
SERIES_COLORS = (
    "#4C6EF5",
    "#E8590C",
    "#2F9E44",
    "#AE3EC9",
    "#1098AD",
    "#F08C00",
    "#E03131",
    "#5C940D",
)
EMPTY_NOTE = "waiting for the first metrics…"

# which panel each live curve belongs to, from the metric catalog (titles and markers too)
CURVE_PANELS = tuple((str(chart), catalog.on_chart(chart)) for chart in catalog.CHARTS)

Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]  # name -> (steps, values)


def _base_layout(fig: go.Figure, *, height: int, title: str | None = None) -> go.Figure:
    shared_layout(fig, height=height, title=title, untitled_top=28)  # room for the legend
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        uirevision="keep",  # a live redraw keeps the person's zoom
    )
    fig.update_xaxes(gridcolor="#EEF0F4", zeroline=False)
    fig.update_yaxes(gridcolor="#EEF0F4", zeroline=False)
    return fig


# ---- architecture -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DiagramBlock:
    """One layer as the diagram draws it."""

    index: int
    type: str
    family: str
    id: str | None = None
    output_shape: tuple[int, ...] | None = None
    params: int | None = None
    sources: tuple[int, ...] = ()  # indices feeding it; -1 = the model input; () = previous
    status: str = "ok"  # ok | error | unreached
    hover: str = ""
    frozen: bool = False  # the spec marks it "frozen": its weights stay as loaded


@dataclass(frozen=True)
class _Node:
    label: str
    sub: str
    colors: tuple[str, str]
    dash: str
    hover: str
    output: str | None
    sources: tuple[int, ...] = field(default=())


ROW = 1.0  # vertical distance between block centres
BOX_W, BOX_H = 2.4, 0.62


def architecture_figure(
    blocks: Sequence[DiagramBlock], *, input_shape: Sequence[int] | None = None
) -> go.Figure:
    """The model top to bottom: blocks coloured by family, the tensor shape on each edge, the
    parameter count in each block; the failing block outlined red, the blocks after it grey."""
    nodes = [
        _Node(
            label="Input",
            sub=shape_text(input_shape) if input_shape else "shape not set",
            colors=INPUT_COLORS,
            dash="solid",
            hover="the model input (batch dimension left out)",
            output=shape_text(input_shape) if input_shape else None,
        )
    ]
    for block in blocks:
        if block.status == "error":
            colors, dash, sub = ERROR_COLORS, "solid", "⚠ error here"
        elif block.status == "unreached":
            colors, dash, sub = UNREACHED_COLORS, "dot", "not reached"
        else:
            colors = FAMILY_COLORS.get(block.family, FAMILY_COLORS["Common"])
            dash = "solid"
            sub = f"{count_text(block.params)} params" if block.params else "no params"
            if block.frozen:
                sub = f"❄ frozen · {sub}"
        name = f"{block.index} · <b>{block.type}</b>" + (f"  ({block.id})" if block.id else "")
        sources = block.sources or (block.index - 1,)
        nodes.append(
            _Node(
                label=name,
                sub=sub,
                colors=colors,
                dash=dash,
                hover=block.hover or block.type,
                output=shape_text(block.output_shape) if block.output_shape else None,
                sources=tuple(s + 1 for s in sources),  # node 0 is the input
            )
        )

    fig = go.Figure()
    shapes: list[dict] = []
    annotations: list[dict] = []
    skip_lane = 0
    for target, node in enumerate(nodes):
        y = -target * ROW
        for source in node.sources:
            if not 0 <= source < target:
                continue
            label = nodes[source].output
            y0 = -source * ROW - BOX_H / 2
            y1 = y + BOX_H / 2
            if source == target - 1:
                shapes.append(_line(0, y0, 0, y1))
                if label:
                    annotations.append(_edge_label(0.08, (y0 + y1) / 2, label, "left"))
            else:  # a skip connection: around the right-hand side
                skip_lane += 1
                x_out = BOX_W / 2 + 0.25 + 0.22 * ((skip_lane - 1) % 4)
                ys, yt = -source * ROW, y
                path = (
                    f"M {BOX_W / 2},{ys} L {x_out},{ys} L {x_out},{yt + 0.12} "
                    f"L {BOX_W / 2},{yt + 0.12}"
                )
                shapes.append(
                    {"type": "path", "path": path, "line": {"color": "#868E96", "width": 1.5}}
                )
                if label:
                    annotations.append(_edge_label(x_out + 0.05, (ys + yt) / 2, label, "left"))
        fill, outline = node.colors
        shapes.append(
            {
                "type": "rect",
                "x0": -BOX_W / 2,
                "x1": BOX_W / 2,
                "y0": y - BOX_H / 2,
                "y1": y + BOX_H / 2,
                "fillcolor": fill,
                "line": {"color": outline, "width": 2, "dash": node.dash},
                "layer": "below",
            }
        )
        annotations.append(
            {
                "x": 0,
                "y": y + 0.1,
                "text": node.label,
                "showarrow": False,
                "font": {"size": 13},
            }
        )
        annotations.append(
            {
                "x": 0,
                "y": y - 0.16,
                "text": node.sub,
                "showarrow": False,
                "font": {"size": 11, "color": "#495057"},
            }
        )
    last = nodes[-1].output if len(nodes) > 1 else None
    if last:
        y_end = -(len(nodes) - 1) * ROW - BOX_H / 2
        shapes.append(_line(0, y_end, 0, y_end - 0.35))
        annotations.append(_edge_label(0.08, y_end - 0.2, f"output {last}", "left"))

    fig.add_trace(  # invisible markers give every block a hover text
        go.Scatter(
            x=[0] * len(nodes),
            y=[-i * ROW for i in range(len(nodes))],
            mode="markers",
            marker={"size": 40, "opacity": 0},
            hovertext=[n.hover for n in nodes],
            hoverinfo="text",
            showlegend=False,
        )
    )
    for family, (fill, outline) in FAMILY_COLORS.items():  # a legend of the colours
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name=family,
                marker={
                    "symbol": "square",
                    "size": 12,
                    "color": fill,
                    "line": {"color": outline, "width": 2},
                },
            )
        )
    fig.update_layout(shapes=shapes, annotations=annotations)
    height = int(90 + 62 * (len(nodes) + 0.6))
    _base_layout(fig, height=height)
    fig.update_layout(plot_bgcolor="rgba(0,0,0,0)", hovermode="closest", dragmode=False)
    fig.update_xaxes(visible=False, range=[-BOX_W / 2 - 0.1, BOX_W / 2 + 1.6], fixedrange=True)
    fig.update_yaxes(visible=False, range=[-(len(nodes) - 1) * ROW - 0.8, 0.45], fixedrange=True)
    return fig


def _line(x0: float, y0: float, x1: float, y1: float) -> dict:
    return {
        "type": "line",
        "x0": x0,
        "y0": y0,
        "x1": x1,
        "y1": y1,
        "line": {"color": "#868E96", "width": 1.5},
    }


def _edge_label(x: float, y: float, text: str, align: str) -> dict:
    return {
        "x": x,
        "y": y,
        "text": text,
        "showarrow": False,
        "xanchor": align,
        "font": {"size": 11, "color": "#1864AB"},
    }


# ---- training curves -------------------------------------------------------------------------


def side_by_side(titles: Sequence[str], *, spacing: float = 0.07) -> go.Figure:
    """An empty figure with one panel per title in a row (axes x, x2, ... / y, y2, ...).

    Does what make_subplots does for one row at a fraction of its cost: the live chart is
    rebuilt every second while a run trains.
    """
    count = len(titles)
    width = (1 - spacing * (count - 1)) / count
    layout: dict = {"annotations": []}
    for position, title in enumerate(titles):
        suffix = "" if position == 0 else str(position + 1)
        start = position * (width + spacing)
        layout[f"xaxis{suffix}"] = {
            "domain": [start, start + width],
            "anchor": f"y{suffix}",
            "title": {"text": "step"},
        }
        layout[f"yaxis{suffix}"] = {"anchor": f"x{suffix}"}
        layout["annotations"].append(
            {
                "text": title,
                "x": start + width / 2,
                "y": 1.0,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "center",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 15},
            }
        )
    return go.Figure(layout=layout)


def _panel_axes(position: int) -> dict[str, str]:
    suffix = "" if position == 0 else str(position + 1)
    return {"xaxis": f"x{suffix}", "yaxis": f"y{suffix}"}


def training_curves_figure(series: Series, *, title: str | None = None) -> go.Figure:
    """Loss (train per interval, validation per epoch), accuracy (or R² / MAE) per epoch and the
    learning rate, side by side, against the optimizer step."""
    fig = side_by_side([panel for panel, _ in CURVE_PANELS])
    for position, (panel, names) in enumerate(CURVE_PANELS):
        axes = _panel_axes(position)
        drawn = 0
        for name in names:
            steps, values = series.get(name, ((), ()))
            if len(steps) == 0:
                continue
            drawn += 1
            trace = _curve_trace(name, steps, values, color=_curve_color(name), legend=True)
            fig.add_trace(trace.update(**axes))
        if not drawn:  # an axis without traces is not drawn: place the note on the page
            start, end = fig.layout[axes["xaxis"].replace("x", "xaxis", 1)].domain
            fig.add_annotation(
                text="after the first epoch" if panel == "Accuracy" else EMPTY_NOTE,
                x=(start + end) / 2,
                y=0.5,
                xref="paper",
                yref="paper",
                showarrow=False,
                font={"color": "#868E96"},
            )
    if len(series.get(catalog.VAL_ACCURACY, ((), ()))[0]):  # accuracy reads best on 0-100%
        fig.layout.yaxis2.update(range=[0, 1.02], tickformat=".0%")
    rates = series.get(catalog.LR, ((), ()))[1]
    if len(rates):  # from zero, so a constant rate is a flat line rather than a zoomed-in wiggle
        fig.layout.yaxis3.range = [0, float(np.max(rates)) * 1.15 or 1.0]
    fig.layout.yaxis3.tickformat = ".2~g"
    return _legend_below(_base_layout(fig, height=360, title=title))


def _legend_below(fig: go.Figure) -> go.Figure:
    """Subplot titles sit on top, so the legend goes underneath the panels."""
    fig.update_layout(
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        margin={"b": 10},
    )
    return fig


def _curve_color(name: str) -> str:
    order = catalog.DRAWN
    return SERIES_COLORS[order.index(name) % len(SERIES_COLORS)] if name in order else "#495057"


def _curve_trace(
    name: str,
    steps: Sequence[float],
    values: Sequence[float],
    *,
    color: str,
    legend: bool,
    label: str | None = None,
    group: str | None = None,
    dash: str = "solid",
) -> go.Scatter:
    info = catalog.metric(name)
    return go.Scatter(
        x=np.asarray(steps, dtype=np.float64),
        y=np.asarray(values, dtype=np.float64),
        mode="lines+markers" if info.per_epoch else "lines",
        name=html_escape(label) if label else info.title,
        line={"color": color, "width": 2, "dash": dash},
        marker={"size": 6},
        legendgroup=group,
        showlegend=legend,
        hovertemplate="step %{x}<br>%{y:.4g}<extra>"
        + (html_escape(label) if label else info.title)
        + "</extra>",
    )


def runs_overlay_figure(
    runs: Sequence[tuple[str, Series]],
    *,
    metrics: Sequence[str] = catalog.COMPARED,
) -> go.Figure:
    """Several runs on the same axes, one colour per run, one panel per metric."""
    fig = side_by_side([catalog.title(m).capitalize() for m in metrics])
    for position, (label, series) in enumerate(runs):
        color = SERIES_COLORS[position % len(SERIES_COLORS)]
        for panel, name in enumerate(metrics):
            steps, values = series.get(name, ((), ()))
            trace = _curve_trace(
                name, steps, values, color=color, legend=panel == 0, label=label, group=label
            )
            fig.add_trace(trace.update(**_panel_axes(panel)))
    if not runs:
        fig.add_annotation(
            text="choose runs to compare", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False
        )
    return _legend_below(_base_layout(fig, height=370))


# ---- classification results ------------------------------------------------------------------


def confusion_matrix_figure(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], *, title: str | None = None
) -> go.Figure:
    """Rows = true class, columns = predicted class; colour = share of the true class, text =
    count, so a big class does not drown the small ones."""
    counts = np.asarray(matrix, dtype=np.int64)
    names = _class_names(class_names, counts.shape[0])
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, np.maximum(totals, 1), dtype=np.float64)
    fig = go.Figure(
        go.Heatmap(
            z=share,
            x=names,
            y=names,
            text=counts,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar={
                "title": {"text": "share of the true class", "side": "right"},
                "tickformat": ".0%",
            },
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} samples (%{z:.0%})<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    side = 160 + 34 * len(names)
    _base_layout(fig, height=min(900, max(360, side)), title=title)
    fig.update_xaxes(title_text="predicted class", type="category", side="bottom", showgrid=False)
    fig.update_yaxes(title_text="true class", type="category", autorange="reversed", showgrid=False)
    return fig


def per_class_accuracy_figure(
    matrix: Sequence[Sequence[int]], class_names: Sequence[str], *, title: str | None = None
) -> go.Figure:
    """Recall per class (diagonal / row total) as bars, worst classes easy to spot."""
    counts = np.asarray(matrix, dtype=np.int64)
    names = _class_names(class_names, counts.shape[0])
    totals = counts.sum(axis=1)
    accuracy = np.divide(np.diag(counts), np.maximum(totals, 1), dtype=np.float64)
    colors = ["#E03131" if a < 0.5 else "#F08C00" if a < 0.8 else "#4C6EF5" for a in accuracy]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=accuracy,
            marker_color=colors,
            text=[f"{a:.0%}" for a in accuracy],
            textposition="outside",
            customdata=totals,
            hovertemplate="%{x}: %{y:.1%} of %{customdata} samples<extra></extra>",
        )
    )
    _base_layout(fig, height=340, title=title)
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", title_text="accuracy")
    fig.update_xaxes(type="category", title_text="class")
    return fig


def class_balance_figure(
    counts: Mapping[str, Sequence[int]], class_names: Sequence[str], *, title: str | None = None
) -> go.Figure:
    """Samples per class in each split (train / val / test) as grouped bars."""
    fig = go.Figure()
    width = max((len(c) for c in counts.values()), default=0)
    names = _class_names(class_names, width)
    for position, (split, values) in enumerate(counts.items()):
        fig.add_trace(
            go.Bar(
                x=names[: len(values)],
                y=list(values),
                name=split,
                marker_color=SERIES_COLORS[position % len(SERIES_COLORS)],
                hovertemplate=f"{split}<br>%{{x}}: %{{y}} samples<extra></extra>",
            )
        )
    _base_layout(fig, height=320, title=title)
    fig.update_layout(barmode="group")
    fig.update_xaxes(type="category", title_text="class")
    fig.update_yaxes(title_text="samples")
    return fig


def _class_names(class_names: Sequence[str], count: int) -> list[str]:
    names = [html_escape(n) for n in class_names][:count]  # user labels: text, not HTML
    return names + [str(i) for i in range(len(names), count)]


# ---- data previews ---------------------------------------------------------------------------


def image_grid_figure(
    images: Sequence[np.ndarray], labels: Sequence[str], *, columns: int = 8, tile_px: int = 84
) -> go.Figure:
    """Images (H, W, C uint8; C = 1 or 3) in a grid, each with its label underneath."""
    if not images:
        return _base_layout(go.Figure(), height=120)
    height, width = images[0].shape[:2]
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    pad = max(1, height // 8)
    label_gap = max(3, round(height * 0.4))  # room under each row for its labels
    row_step = height + label_gap
    mosaic = np.full((rows * row_step + pad, columns * (width + pad) + pad, 3), 255, dtype=np.uint8)
    annotations = []
    for position, image in enumerate(images):
        row, col = divmod(position, columns)
        tile = np.asarray(image, dtype=np.uint8)
        if tile.ndim == 2:
            tile = tile[:, :, None]
        if tile.shape[2] == 1:
            tile = np.repeat(tile, 3, axis=2)
        top = pad + row * row_step
        left = pad + col * (width + pad)
        mosaic[top : top + height, left : left + width] = tile[:height, :width, :3]
    fig = go.Figure(go.Image(z=mosaic, hoverinfo="skip"))
    for position, label in enumerate(labels[: len(images)]):
        row, col = divmod(position, columns)
        annotations.append(
            {
                "x": pad + col * (width + pad) + width / 2,
                "y": pad + row * row_step + height + label_gap / 2,
                "text": html_escape(label),
                "showarrow": False,
                "yanchor": "middle",
                "font": {"size": 12},
            }
        )
    fig.update_layout(annotations=annotations)
    scale = tile_px / max(height, width)
    _base_layout(fig, height=int((rows * row_step + pad) * scale + 40))
    fig.update_layout(width=None, margin={"l": 0, "r": 0, "t": 10, "b": 30})
    fig.update_xaxes(visible=False, showgrid=False)
    fig.update_yaxes(visible=False, showgrid=False)
    return fig


def signal_figure(
    signals: Sequence[np.ndarray], labels: Sequence[str], *, columns: int = 4
) -> go.Figure:
    """1-D signals as small line plots, each titled with its label."""
    if not signals:
        return _base_layout(go.Figure(), height=120)
    columns = max(1, min(columns, len(signals)))
    rows = -(-len(signals) // columns)
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[html_escape(label) for label in labels[: len(signals)]],
        vertical_spacing=min(0.12, 0.5 / rows),
        horizontal_spacing=0.04,
    )
    for position, signal in enumerate(signals):
        row, col = divmod(position, columns)
        values = np.asarray(signal, dtype=np.float64).ravel()
        fig.add_trace(
            go.Scatter(
                y=values,
                mode="lines",
                line={"color": SERIES_COLORS[0], "width": 1.5},
                showlegend=False,
                hovertemplate="t=%{x}: %{y:.3g}<extra></extra>",
            ),
            row=row + 1,
            col=col + 1,
        )
    _base_layout(fig, height=140 * rows + 40)
    fig.update_xaxes(showticklabels=False)
    return fig
