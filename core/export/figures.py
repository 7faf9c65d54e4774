"""The model card's pictures as PNG files: the confusion matrix and example explanations.

Drawn with matplotlib, not plotly: the studio's own charts are plotly figures, but plotly needs
kaleido (and a Chrome download) to write a PNG, which a bundle export cannot assume. These are
pure functions: arrays in, a PNG file out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MAX_LABELLED_CLASSES = 20  # beyond this the axes carry indices, not names
MAX_BARS = 15  # tokens / features shown in an explanation's bar chart
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def confusion_png(matrix: list[list[int]], class_names: list[str], path: Path) -> Path:
    """The test split's confusion matrix (rows: true class, columns: predicted) as a PNG."""
    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    n = len(counts)
    side = min(10.0, 2.5 + 0.45 * n)
    figure, axes = plt.subplots(figsize=(side, side), dpi=DPI)
    axes.imshow(counts, cmap="Blues")
    names = class_names if n <= MAX_LABELLED_CLASSES else [str(i) for i in range(n)]
    axes.set_xticks(
        range(n), labels=names, rotation=45 if n > 5 else 0, ha="right" if n > 5 else "center"
    )
    axes.set_yticks(range(n), labels=names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    if n <= MAX_LABELLED_CLASSES:
        peak = counts.max() if counts.size else 0
        for (row, column), value in np.ndenumerate(counts):
            colour = "white" if peak and value > peak / 2 else "black"
            axes.text(column, row, str(value), ha="center", va="center", color=colour, fontsize=8)
    axes.set_title(f"Confusion matrix (test split, {int(counts.sum())} samples)")
    return _save(plt, figure, path)


def explanation_png(
    *,
    modality: str,
    human: Any,
    scores: np.ndarray,
    title: str,
    tokens: list[str] | None,
    path: Path,
) -> Path:
    """One explained sample: the input as a person sees it next to what the model relied on.

    human: `Dataset.human(x)` (image (H, W, C) uint8, signal 1-D, text string, row dict);
    scores: one attribution score per position (`core.explain.position_scores`)."""
    plt = _pyplot()
    scores = np.asarray(scores, dtype=np.float32)
    if modality == "image":
        figure, (left, right) = plt.subplots(1, 2, figsize=(7, 3.6), dpi=DPI)
        image = np.asarray(human)
        left.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray")
        left.set_title("input")
        limit = float(np.abs(scores).max()) or 1.0
        right.imshow(scores, cmap="RdBu_r", vmin=-limit, vmax=limit)
        right.set_title("relied on (red: for, blue: against)")
        for axes in (left, right):
            axes.axis("off")
    elif modality == "signal":
        figure, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4), dpi=DPI, sharex=True)
        signal = np.asarray(human, dtype=np.float32)
        top.plot(signal[: len(scores)] if signal.size >= len(scores) else signal, color="black")
        top.set_title("input")
        bottom.bar(range(len(scores)), scores, color=np.where(scores >= 0, "#c0392b", "#2e6da4"))
        bottom.set_title("relied on per time step (red: for, blue: against)")
        bottom.set_xlabel("time step")
    else:
        names = _bar_names(modality, human, tokens, len(scores))
        order = [i for i in np.argsort(-np.abs(scores)) if names[i] != "<pad>"][:MAX_BARS][::-1]
        figure, axes = plt.subplots(figsize=(7, 0.8 + 0.3 * max(1, len(order))), dpi=DPI)
        values = scores[order]
        axes.barh(
            [names[i] for i in order], values, color=np.where(values >= 0, "#c0392b", "#2e6da4")
        )
        axes.axvline(0, color="grey", linewidth=0.8)
        axes.set_xlabel("attribution (red: for, blue: against)")
    figure.suptitle(title, fontsize=10)
    return _save(plt, figure, path)


def _bar_names(modality: str, human: Any, tokens: list[str] | None, count: int) -> list[str]:
    if modality == "text" and tokens:
        return [f"{token} ({i})" if token != "<pad>" else token for i, token in enumerate(tokens)]
    if modality == "tabular" and isinstance(human, dict):
        return [f"{name} = {value:.3g}" for name, value in human.items()]
    return [str(i) for i in range(count)]


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)
    return path
