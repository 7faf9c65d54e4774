"""The Compress page's before/after table as a Plotly figure (data in, figure out)."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from core.compress.table import table_rows

BETTER, WORSE, NEUTRAL = "#e6f4ea", "#fde7e9", "white"


def compression_table_figure(result: dict[str, Any]) -> go.Figure:
    """One row per figure (parameters ... test accuracy): before, after, and the change,
    coloured green where the compressed model is smaller, faster or as accurate."""
    rows = table_rows(result)
    colours = [_colour(row) for row in rows]
    header = ["", _column_title(result, "before"), _column_title(result, "after"), "change"]
    figure = go.Figure(
        go.Table(
            columnwidth=[2.2, 1.3, 1.3, 1],
            header={"values": header, "align": "left", "font": {"size": 13}},
            cells={
                "values": [[r[k] for r in rows] for k in ("figure", "before", "after", "ratio")],
                "align": "left",
                "fill_color": [[NEUTRAL] * len(rows)] * 3 + [colours],
                "height": 28,
            },
        )
    )
    figure.update_layout(margin={"l": 0, "r": 0, "t": 4, "b": 0}, height=60 + 28 * len(rows))
    return figure


def _column_title(result: dict[str, Any], column: str) -> str:
    runtime = result[column].get("runtime")
    who = f"run {result['parent_run_id']}" if column == "before" else result.get("method", "")
    return f"{column}: {who}" + (" (ONNX)" if runtime == "onnxruntime" else "")


def _colour(row: dict[str, str]) -> str:
    change = row["ratio"]
    if change == "-":
        return NEUTRAL
    if change.endswith("pt"):  # accuracy: a drop of more than a point is worse
        return WORSE if float(change.split()[0]) < -1.0 else BETTER
    value = float(change.rstrip("x"))
    return BETTER if value < 0.99 else WORSE if value > 1.01 else NEUTRAL
