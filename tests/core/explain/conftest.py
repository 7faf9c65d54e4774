"""Shared, small and fast: scikit-learn's digits as a studio Dataset and a CNN trained on it."""

from __future__ import annotations

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from core.data import Dataset, Normalization, Split


def make_digits() -> Dataset:
    """Digits 8x8 in [0, 1], normalized with train statistics; 1400 train / 397 test."""
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # (n, 1, 8, 8)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    train, test = order[:1400], order[1400:]
    mean, std = x[train].mean().view(1, 1, 1), x[train].std().view(1, 1, 1)
    normalize = lambda raw: (raw - mean) / std  # noqa: E731
    return Dataset(
        name="digits",
        task="classification",
        modality="image",
        sample_shape=(1, 8, 8),
        class_names=[str(i) for i in range(10)],
        train=Split(normalize(x[train]), y[train]),
        val=Split(normalize(x[test][:50]), y[test][:50]),
        test=Split(normalize(x[test]), y[test]),
        normalization=Normalization(mean, std),
    )


def digits_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


def train_quickly(model: nn.Module, dataset: Dataset, *, epochs: int = 10) -> nn.Module:
    """A plain Adam loop: ~2 s, ~98% test accuracy. One thread: these tensors are too small to
    share, and the suite runs beside other processes on two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(model, dataset, epochs=epochs)
    finally:
        torch.set_num_threads(threads)


def _train(model: nn.Module, dataset: Dataset, *, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        order = torch.randperm(len(dataset.train), generator=generator)
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            loss = nn.functional.cross_entropy(
                model(dataset.train.x[batch]), dataset.train.y[batch]
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: one thread is fastest, and two threads beside other busy processes on two
    cores run tens of times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return make_digits()


@pytest.fixture(scope="session")
def trained_cnn(digits: Dataset) -> nn.Module:
    torch.manual_seed(0)
    return train_quickly(digits_cnn(), digits)


@pytest.fixture(scope="session")
def blank(digits: Dataset) -> torch.Tensor:
    """The "nothing there" input: a black 8x8 image, normalized."""
    return digits.normalize(torch.zeros(1, 8, 8))
