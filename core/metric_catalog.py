"""Every metric a run records, written once: its name, title, unit, format, chart and whether
higher is better.

The training loop records these names, the worker stores them, and the live page, the Runs
page, the figures and the CLI read their titles and formats from here. Metric names are a
contract (`studio metrics --json` rows, `studio train --json` keys): add, never rename.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class Chart(StrEnum):
    """The panel of the live chart a metric is drawn in (None in the catalog: not drawn)."""

    LOSS = "Loss"
    ACCURACY = "Accuracy"  # also R² and MAE for regression: the "how good" panel
    LR = "Learning rate"
    SPEED = "Speed"  # shown as a number next to the progress bar, not drawn on the live chart


class Split(StrEnum):
    TRAIN = "train"
    VAL = "val"
    TEST = "test"


@dataclass(frozen=True)
class MetricInfo:
    name: str  # as stored and printed: "val_accuracy"
    title: str  # as a person reads it: "validation accuracy"
    unit: str  # "" for ratios and losses
    format: str  # format spec for one value: ".2%" / ".4g"
    chart: Chart | None
    higher_is_better: bool | None  # None: neither (the learning rate, the speed)
    per_epoch: bool  # recorded once per epoch (drawn with markers), else every log interval

    def text(self, value: float | None) -> str:
        """The value as the CLI and the pages print it: "93.12%", "0.1234", "5,120 samples/s"."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "—"
        return format(value, self.format) + (f" {self.unit}" if self.unit else "")


TRAIN_LOSS = "train_loss"
LR = "lr"
SAMPLES_PER_S = "samples_per_s"
VAL_LOSS = "val_loss"
VAL_ACCURACY = "val_accuracy"
VAL_MAE = "val_mae"
VAL_R2 = "val_r2"
TEST_LOSS = "test_loss"
TEST_ACCURACY = "test_accuracy"
TEST_MAE = "test_mae"
TEST_R2 = "test_r2"

_SPLIT_TITLES = {Split.TRAIN: "train", Split.VAL: "validation", Split.TEST: "test"}
# what `evaluate` reports on a split: key -> (title, format, higher is better)
_EVALUATED = {
    "loss": ("loss", ".4g", False),
    "accuracy": ("accuracy", ".2%", True),
    "mae": ("MAE", ".4g", False),
    "r2": ("R²", ".4g", True),
}
_CHART_OF = {
    "loss": Chart.LOSS,
    "accuracy": Chart.ACCURACY,
    "mae": Chart.ACCURACY,
    "r2": Chart.ACCURACY,
}


def split_metric(split: Split | str, key: str) -> str:
    """The recorded name of what `evaluate` calls `key` on `split`: ("val", "loss") -> val_loss."""
    return f"{Split(split)}_{key}"


def _catalog() -> dict[str, MetricInfo]:
    entries = [
        MetricInfo(TRAIN_LOSS, "train loss", "", ".4g", Chart.LOSS, False, False),
        MetricInfo(LR, "learning rate", "", ".4g", Chart.LR, None, False),
        MetricInfo(SAMPLES_PER_S, "samples / s", "samples/s", ",.0f", Chart.SPEED, None, False),
    ]
    for split in (Split.VAL, Split.TEST):
        for key, (title, spec, higher) in _EVALUATED.items():
            entries.append(
                MetricInfo(
                    split_metric(split, key),
                    f"{_SPLIT_TITLES[split]} {title}",
                    "",
                    spec,
                    _CHART_OF[key] if split == Split.VAL else None,  # test: once, at the end
                    higher,
                    True,
                )
            )
    return {entry.name: entry for entry in entries}


METRICS: dict[str, MetricInfo] = _catalog()

# drawn on the live chart, in colour order (the first gets the first colour)
DRAWN = (TRAIN_LOSS, VAL_LOSS, VAL_ACCURACY, LR, VAL_R2, VAL_MAE)
LIVE = (*DRAWN, SAMPLES_PER_S)  # what the live page reads: the drawn curves and the speed
COMPARED = (TRAIN_LOSS, VAL_LOSS, VAL_ACCURACY)  # the Runs page overlays these
SUMMARY = (TRAIN_LOSS, VAL_LOSS, VAL_ACCURACY, TEST_ACCURACY)  # `studio train --json` metrics
CHARTS = (Chart.LOSS, Chart.ACCURACY, Chart.LR)  # the live chart's panels, left to right


def metric(name: str) -> MetricInfo:
    """The catalog entry of `name`; a name the catalog lacks (a newer recorder) gets a plain
    entry titled by its name, so nothing recorded is ever hidden."""
    known = METRICS.get(name)
    if known is not None:
        return known
    return MetricInfo(name, name.replace("_", " "), "", ".4g", None, None, False)


def title(name: str) -> str:
    return metric(name).title


def value_text(name: str, value: float | None) -> str:
    """One value of `name` formatted by its catalog entry (unit included)."""
    return metric(name).text(value)


def on_chart(chart: Chart) -> tuple[str, ...]:
    """The drawn metrics of one panel, in colour order."""
    return tuple(name for name in DRAWN if METRICS[name].chart == chart)
