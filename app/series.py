"""Curves for live charts: a run's metrics, downsampled by the one rule of core.runs.curves.

Pure functions (no Streamlit, no database) so the page, the bench and the tests share one path:
a first read seeds each curve from the database's already reduced series, later reads merge the
rows after the last id seen, and both reduce by the same rule (min and max per step bucket), so
a curve built up poll by poll is exactly the curve a fresh read of the run draws.

A LiveCurves value is never changed in place: merging returns a new one, and its arrays are
read-only, so one copy can be shared by every session of the server (app.live's cache).
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field, replace

import numpy as np

from core.runs.curves import BUCKETS, CurvePoints, empty_curve, merge_points

MAX_POINTS = 2 * BUCKETS  # per curve on screen: each bucket draws its min and its max


@dataclass(frozen=True)
class LiveCurves:
    """Every metric of one run, plus the highest metric id already merged."""

    run_id: int
    attempts: int = 0  # a worker re-claiming the run rewinds its metrics: start over
    last_id: int = 0
    curves: dict[str, CurvePoints] = field(default_factory=dict)  # reduced by the rule
    recorded: dict[str, int] = field(default_factory=dict)  # points recorded per metric
    last_step: dict[str, int] = field(default_factory=dict)  # last step merged per metric
    latest: dict[str, float] = field(default_factory=dict)  # last value of each metric


def _frozen(curve: CurvePoints) -> CurvePoints:
    for array in (curve.steps, curve.epochs, curve.values):
        array.flags.writeable = False
    return curve


def seed_curve(
    live: LiveCurves,
    name: str,
    steps,
    epochs,
    values,
    *,
    recorded: int,
    last_step: int,
    last_id: int,
) -> LiveCurves:
    """`live` with a curve started from an already reduced series (the first read of a run).
    The run's `last_id` becomes the smallest of the seeded ones: rows after it that a curve
    already holds are recognised by step when they arrive again."""
    curve = _frozen(merge_points(empty_curve(), steps, epochs, values))
    latest = dict(live.latest)
    if len(curve):
        latest.setdefault(name, float(curve.values[-1]))
    return replace(
        live,
        curves={**live.curves, name: curve},
        recorded={**live.recorded, name: recorded},
        last_step={**live.last_step, name: last_step},
        latest=latest,
        last_id=last_id if live.last_id == 0 else min(live.last_id, last_id),
    )


def merge_rows(
    live: LiveCurves, rows: Iterable, *, curve_names: Container[str] | None = None
) -> LiveCurves:
    """`live` with metric rows (objects with id, name, step, epoch, value; oldest first)
    merged in; only the metrics in `curve_names` (all when None) get a curve, the others just
    their latest value. Rows at steps a curve already holds are not counted again."""
    grouped: dict[str, tuple[list[int], list[int], list[float]]] = {}
    latest = dict(live.latest)
    last_id = live.last_id
    for row in rows:
        last_id = max(last_id, int(row.id))
        latest[row.name] = float(row.value)
        if curve_names is not None and row.name not in curve_names:
            continue
        if int(row.step) <= live.last_step.get(row.name, -1):
            continue  # already in the curve (a seeded series overlaps the rows after last_id)
        steps, epochs, values = grouped.setdefault(row.name, ([], [], []))
        steps.append(int(row.step))
        epochs.append(int(row.epoch))
        values.append(float(row.value))
    if not grouped and last_id == live.last_id and latest == live.latest:
        return live
    curves, recorded, last_step = dict(live.curves), dict(live.recorded), dict(live.last_step)
    for name, (steps, epochs, values) in grouped.items():
        curves[name] = _frozen(merge_points(curves.get(name, empty_curve()), steps, epochs, values))
        recorded[name] = recorded.get(name, 0) + len(set(steps))
        last_step[name] = max(last_step.get(name, -1), max(steps))
    return replace(
        live,
        curves=curves,
        recorded=recorded,
        last_step=last_step,
        latest=latest,
        last_id=last_id,
    )


def chart_series(
    live: LiveCurves, names: Iterable[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (steps, values) of the curves a figure draws (already within MAX_POINTS)."""
    return {
        name: (live.curves[name].steps, live.curves[name].values)
        for name in names
        if name in live.curves
    }
