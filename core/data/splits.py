"""Deterministic splits: the same seed gives the same indices on every machine.

Only explicitly seeded generators are used (numpy `default_rng(seed)`), never the global RNG.
"""

from __future__ import annotations

import numpy as np

from core.errors import DataError

TEST_SEED = 0  # uploads and digits carve their test split with this fixed seed: test never moves
TEST_FRACTION = 0.2  # share of an upload (or of digits) held out as its test split


def check_fraction(value: float, *, what: str = "val_fraction") -> float:
    if not isinstance(value, int | float) or not 0.0 <= float(value) < 1.0:
        raise DataError(
            f"{what}={value!r} is out of range; use a number from 0 up to (not incl.) 1"
        )
    return float(value)


def carve(
    n: int, fraction: float, *, seed: int, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Split range(n) into (kept, carved) sorted int64 index arrays.

    `carved` holds round(fraction * n) indices (at least one when fraction > 0 and n >= 2).
    With `labels`, the carve is stratified: each class gives its share (largest remainder), and a
    class with two or more samples always keeps at least one.
    """
    fraction = check_fraction(fraction)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    total = int(round(fraction * n))
    if fraction > 0 and n >= 2:
        total = max(total, 1)
    if labels is None:
        carved = order[:total]
    else:
        labels = np.asarray(labels)
        shuffled = labels[order]
        classes = np.unique(labels)
        members = [order[shuffled == c] for c in classes]
        quotas = np.array([fraction * len(m) for m in members])
        counts = np.floor(quotas).astype(np.int64)
        remainders = quotas - counts
        # hand out the rest by largest remainder, ties broken by class order (stable sort)
        for position in np.argsort(-remainders, kind="stable"):
            if counts.sum() >= total:
                break
            counts[position] += 1
        caps = np.array([len(m) - 1 if len(m) >= 2 else len(m) for m in members])
        counts = np.minimum(counts, caps)
        carved = np.concatenate(
            [m[:k] for m, k in zip(members, counts, strict=True)] or [order[:0]]
        )
    carved = np.sort(carved).astype(np.int64)
    mask = np.ones(n, dtype=bool)
    mask[carved] = False
    kept = np.flatnonzero(mask).astype(np.int64)
    return kept, carved
