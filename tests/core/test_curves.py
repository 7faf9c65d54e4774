"""The one downsampling rule: min and max per power-of-two step bucket, the same however the
points arrive."""

from __future__ import annotations

import numpy as np
import pytest

from core.runs.curves import bucket_width, empty_curve, merge_points, reduce_points


def noisy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n + 1)
    values = np.round(rng.random(n), 1)  # rounded: many ties, where tie-breaking matters
    return steps, steps // 50 + 1, values


def test_short_curves_are_kept_whole():
    steps, epochs, _ = noisy(500, 0)
    values = np.random.default_rng(0).random(500)  # no ties: a bucket of two keeps both
    curve = reduce_points(steps, epochs, values, buckets=300)
    assert list(curve.steps) == list(steps) and list(curve.values) == list(values)


def test_each_bucket_keeps_its_extremes_and_spikes_survive():
    steps, epochs, values = noisy(100_000, 1)
    values[54_321] = 50.0
    values[77_777] = -50.0
    curve = reduce_points(steps, epochs, values, buckets=300)
    assert len(curve) <= 600 and np.all(np.diff(curve.steps) > 0)
    assert curve.values.max() == 50.0 and curve.values.min() == -50.0
    width = bucket_width(100_000, 300)
    assert width == 512  # the smallest power of two leaving at most 300 buckets
    for bucket in (0, 100, 195):
        inside = (steps // width) == bucket
        kept = curve.values[(curve.steps // width) == bucket]
        assert kept.min() == values[inside].min() and kept.max() == values[inside].max()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [1, 37, 1000])
def test_merging_in_chunks_equals_reducing_everything_at_once(seed, chunk):
    steps, epochs, values = noisy(20_000 if chunk > 1 else 2_000, seed)
    whole = reduce_points(steps, epochs, values, buckets=50)
    built = empty_curve()
    for start in range(0, len(steps), chunk):
        part = slice(start, start + chunk)
        built = merge_points(built, steps[part], epochs[part], values[part], buckets=50)
    for field in ("steps", "epochs", "values"):
        assert np.array_equal(getattr(built, field), getattr(whole, field)), field


def test_a_step_given_again_counts_once_with_its_last_value():
    curve = reduce_points([1, 2, 2], [1, 1, 1], [5.0, 3.0, 4.0], buckets=10)
    assert list(curve.steps) == [1, 2] and list(curve.values) == [5.0, 4.0]


def test_nan_values_do_not_hide_the_real_extremes():
    curve = reduce_points([0, 1, 2, 3], [1] * 4, [1.0, float("nan"), 3.0, 2.0], buckets=1)
    assert sorted(curve.values.tolist()) == [1.0, 3.0]
