"""Curves for live charts: merge metric rows as they arrive, downsample before drawing.

Pure functions (no Streamlit, no database) so the page, the bench and the tests share one path:
the page reads rows after the last id it has seen, merges them here, and draws at most a fixed
number of points however long the run gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

MAX_POINTS = 600  # per curve on screen: more than a chart's width in pixels gains nothing
KEEP_POINTS = 4 * MAX_POINTS  # a live curve keeps this many before compacting itself


@dataclass
class Curve:
    """One metric's points, in step order."""

    steps: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))
    values: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float64))

    def __len__(self) -> int:
        return int(self.steps.shape[0])


@dataclass
class LiveCurves:
    """Every metric of one run, plus the highest metric id already merged."""

    run_id: int
    attempts: int = 0  # a worker re-claiming the run rewinds its metrics: start over
    last_id: int = 0
    curves: dict[str, Curve] = field(default_factory=dict)
    recorded: dict[str, int] = field(default_factory=dict)  # points seen per metric, all time
    latest: dict[str, float] = field(default_factory=dict)  # last value of each metric


def downsample(steps, values, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` points: the first and the last, and each bucket's minimum and maximum
    in step order, so spikes survive. Returns float arrays (steps, values)."""
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = steps.shape[0]
    if n <= max_points or max_points < 4:
        return steps, values
    buckets = (max_points - 2) // 2
    inner = values[1 : n - 1]
    size = inner.shape[0] // buckets  # >= 1 because n > max_points
    body = inner[: size * buckets].reshape(buckets, size)  # (buckets, size)
    offsets = 1 + np.arange(buckets) * size
    picks = [offsets + body.argmin(axis=1), offsets + body.argmax(axis=1)]
    rest = inner[size * buckets :]
    if rest.size:  # the few points that did not fill a bucket join the last one's extremes
        picks.append(1 + size * buckets + np.array([rest.argmin(), rest.argmax()]))
    index = np.unique(np.concatenate([[0, n - 1], *picks]))
    if index.shape[0] > max_points:  # the leftover bucket can add two: drop from the middle
        index = np.concatenate([index[: max_points - 1], index[-1:]])
    return steps[index], values[index]


def merge_rows(live: LiveCurves, rows: Iterable, *, keep: int = KEEP_POINTS) -> LiveCurves:
    """Append metric rows (objects with id, name, step, value) oldest first, skipping steps a
    curve already has; a curve longer than `keep` is compacted to `keep // 2` points so memory
    and drawing time stay bounded however long the run."""
    grouped: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        steps, values = grouped.setdefault(row.name, ([], []))
        steps.append(float(row.step))
        values.append(float(row.value))
        live.latest[row.name] = float(row.value)
        live.last_id = max(live.last_id, int(row.id))
    for name, (steps, values) in grouped.items():
        curve = live.curves.get(name) or Curve()
        new_steps, new_values = np.asarray(steps), np.asarray(values)
        if len(curve):  # a row already drawn from a seeded series is not drawn twice
            fresh = new_steps > curve.steps[-1]
            new_steps, new_values = new_steps[fresh], new_values[fresh]
        merged_steps = np.concatenate([curve.steps, new_steps])
        merged_values = np.concatenate([curve.values, new_values])
        if merged_steps.shape[0] > keep:
            merged_steps, merged_values = downsample(merged_steps, merged_values, keep // 2)
        live.curves[name] = Curve(merged_steps, merged_values)
        live.recorded[name] = live.recorded.get(name, 0) + len(new_steps)
    return live


def seed_curve(live: LiveCurves, name: str, steps, values, *, recorded: int, last_id: int):
    """Start a curve from an already downsampled series (the first read of a long run). The
    run's `last_id` becomes the smallest of the seeded ones: rows after it that a curve already
    holds are skipped by step when they arrive again."""
    live.curves[name] = Curve(np.asarray(steps, np.float64), np.asarray(values, np.float64))
    live.recorded[name] = recorded
    if len(values):
        live.latest[name] = float(values[-1])
    live.last_id = last_id if live.last_id == 0 else min(live.last_id, last_id)


def for_chart(curves: Mapping[str, Curve], max_points: int = MAX_POINTS) -> dict[str, Curve]:
    """Every curve cut down to at most `max_points` for drawing."""
    return {name: Curve(*downsample(c.steps, c.values, max_points)) for name, c in curves.items()}
