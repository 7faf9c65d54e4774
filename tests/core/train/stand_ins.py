"""Tiny duck-typed datasets and models for the loop's tests (a Dataset has train/val/test
splits with .x/.y, .task and .num_classes)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import torch
from torch import nn


@dataclass(frozen=True)
class Split:
    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class StandInDataset:
    task: str
    num_classes: int
    train: Split
    val: Split
    test: Split


@cache
def digits() -> StandInDataset:
    """scikit-learn digits, 1x8x8, split 1257 train / 180 val / 360 test, standardized."""
    try:
        from core.data import load_dataset

        return load_dataset("digits")
    except Exception:  # the datasets issue has not landed: build it here
        pass
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = torch.tensor(raw.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    y = torch.tensor(raw.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[order], y[order]
    mean, std = x[:1257].mean(), x[:1257].std()
    x = (x - mean) / std
    return StandInDataset(
        "classification",
        10,
        Split(x[:1257], y[:1257]),
        Split(x[1257:1437], y[1257:1437]),
        Split(x[1437:], y[1437:]),
    )


def blobs(n: int = 256, features: int = 4, classes: int = 3, seed: int = 0) -> StandInDataset:
    """Gaussian blobs: an easy classification set for fast loop tests."""
    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, features, generator=generator) * 3
    y = torch.randint(0, classes, (n,), generator=generator)
    x = centers[y] + torch.randn(n, features, generator=generator)
    a, b = int(n * 0.7), int(n * 0.85)
    return StandInDataset(
        "classification", classes, Split(x[:a], y[:a]), Split(x[a:b], y[a:b]), Split(x[b:], y[b:])
    )


def linear_regression(n: int = 400, features: int = 5, seed: int = 0) -> StandInDataset:
    """y = x·w + 0.1 noise, targets shaped (n,) float32 as core.data gives them."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(features, generator=generator)
    x = torch.randn(n, features, generator=generator)
    y = x @ w + 0.1 * torch.randn(n, generator=generator)
    a, b = int(n * 0.7), int(n * 0.85)
    return StandInDataset(
        "regression", 1, Split(x[:a], y[:a]), Split(x[a:b], y[a:b]), Split(x[b:], y[b:])
    )


def small_cnn(classes: int = 10) -> nn.Module:
    """A small CNN for 1x8x8 digits."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (batch, 32, 4, 4)
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, classes),
    )


def mlp(features: int = 4, classes: int = 3, dropout: float = 0.0) -> nn.Module:
    """Two layers with optional dropout (dropout exercises the RNG state on resume)."""
    return nn.Sequential(
        nn.Linear(features, 32), nn.ReLU(), nn.Dropout(dropout), nn.Linear(32, classes)
    )


class NaNAfter(nn.Module):
    """Wraps a model; its output becomes NaN from the `after`-th training forward on."""

    def __init__(self, inner: nn.Module, after: int) -> None:
        super().__init__()
        self.inner, self.after, self.calls = inner, after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.after:
                return out * float("nan")
        return out
