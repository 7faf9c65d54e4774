"""The one downsampling rule between recorded metrics and a chart: min and max per step bucket.

Steps are cut into buckets of `width` steps, aligned at step 0, with `width` the smallest power
of two that leaves at most `buckets` buckets up to the curve's last step. Each bucket keeps its
lowest and its highest point (the earliest one on a tie), so spikes survive and a curve of up
to about 2 x `buckets` points is kept whole.

The rule is a function of the set of points alone, and reducing already reduced points gives
the same answer (a bucket's min is the min of its parts' mins; widths are powers of two, so a
wider bucket is a union of narrower ones). That is what lets a page read a run's whole curve
once and then only the newer rows, and draw exactly what a fresh read of everything would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BUCKETS = 300  # per curve: at most 2 x 300 points drawn, more than a chart's width needs


def bucket_width(last_step: int, buckets: int = BUCKETS) -> int:
    """The smallest power of two `w` with steps 0..last_step in at most `buckets` buckets."""
    if buckets < 1:
        raise ValueError(f"buckets={buckets}: ask for at least 1")
    width = 1
    while max(0, int(last_step)) // width >= buckets:
        width *= 2
    return width


def reduce_indices(steps: np.ndarray, values: np.ndarray, buckets: int = BUCKETS) -> np.ndarray:
    """Indices (in step order) of the points the rule keeps from (steps, values): each
    bucket's minimum and maximum. Steps must be distinct; NaN values count as neither."""
    steps = np.asarray(steps, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if steps.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    width = bucket_width(int(steps.max()), buckets)
    bucket = steps // width
    finite = np.where(np.isnan(values), np.inf, values)  # a NaN is never the minimum ...
    lowest = np.lexsort((steps, finite, bucket))  # by bucket, then value, then step
    finite = np.where(np.isnan(values), -np.inf, values)  # ... nor the maximum
    highest = np.lexsort((steps, -finite, bucket))
    first_low = np.unique(bucket[lowest], return_index=True)[1]
    first_high = np.unique(bucket[highest], return_index=True)[1]
    keep = np.union1d(lowest[first_low], highest[first_high])
    return keep[np.argsort(steps[keep], kind="stable")]


@dataclass(frozen=True)
class CurvePoints:
    """A downsampled curve: parallel arrays in step order."""

    steps: np.ndarray  # int64
    epochs: np.ndarray  # int64
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return int(self.steps.shape[0])


def empty_curve() -> CurvePoints:
    return CurvePoints(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


def reduce_points(
    steps: Sequence[int] | np.ndarray,
    epochs: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    buckets: int = BUCKETS,
) -> CurvePoints:
    """The points of (steps, epochs, values) the rule keeps (a step given twice counts once,
    the last one given)."""
    steps = np.asarray(steps, dtype=np.int64)
    epochs = np.asarray(epochs, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if steps.shape[0] == 0:
        return empty_curve()
    # distinct steps, the last occurrence winning (a re-recorded step replaces the old value)
    reverse = steps[::-1]
    _, last_of = np.unique(reverse, return_index=True)
    distinct = steps.shape[0] - 1 - last_of
    steps, epochs, values = steps[distinct], epochs[distinct], values[distinct]
    keep = reduce_indices(steps, values, buckets)
    return CurvePoints(steps[keep], epochs[keep], values[keep])


def merge_points(
    curve: CurvePoints,
    steps: Sequence[int] | np.ndarray,
    epochs: Sequence[int] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    buckets: int = BUCKETS,
) -> CurvePoints:
    """`curve` with new points added, reduced by the same rule: equal to reducing every point
    the curve has ever been given."""
    return reduce_points(
        np.concatenate([curve.steps, np.asarray(steps, dtype=np.int64)]),
        np.concatenate([curve.epochs, np.asarray(epochs, dtype=np.int64)]),
        np.concatenate([curve.values, np.asarray(values, dtype=np.float64)]),
        buckets,
    )
