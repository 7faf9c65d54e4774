"""Splits: sizes, stratification, and the same indices for the same seed everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.splits import carve
from core.errors import DataError


def test_same_seed_same_indices_on_every_machine() -> None:
    # pinned values: a change here means splits moved between versions or machines
    assert carve(20, 0.25, seed=0)[1].tolist() == [2, 4, 6, 13, 19]
    assert carve(12, 0.25, seed=1, labels=np.arange(12) % 3)[1].tolist() == [0, 4, 8]


def test_sizes_disjoint_and_complete() -> None:
    kept, carved = carve(101, 0.1, seed=3)
    assert len(carved) == 10 and len(kept) == 91
    assert sorted(np.concatenate([kept, carved]).tolist()) == list(range(101))


def test_stratified_shares_and_every_class_kept() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    kept, carved = carve(100, 0.2, seed=0, labels=labels)
    assert np.bincount(labels[carved]).tolist() == [10, 6, 4]
    rare = np.array([0] * 10 + [1] * 2)
    kept, carved = carve(12, 0.5, seed=0, labels=rare)
    assert set(rare[kept].tolist()) == {0, 1}  # a class never leaves train entirely


def test_at_least_one_carved_and_zero_fraction() -> None:
    assert len(carve(5, 0.01, seed=0)[1]) == 1
    assert len(carve(5, 0.0, seed=0)[1]) == 0


def test_different_seeds_differ() -> None:
    assert not np.array_equal(carve(1000, 0.1, seed=0)[1], carve(1000, 0.1, seed=1)[1])


@pytest.mark.parametrize("fraction", [-0.1, 1.0, 2, "0.1"])
def test_bad_fraction_refused(fraction: object) -> None:
    with pytest.raises(DataError, match=r"val_fraction=.* is out of range"):
        carve(10, fraction, seed=0)  # type: ignore[arg-type]
