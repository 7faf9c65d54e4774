"""How well the model does on the test split: counts a person can check, nothing modelled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from core.explain.explanation import model_device
from core.explain.samples import PREDICT_BATCH, predictions

TOP_MISTAKES = 3  # mistakes named in words


@dataclass(frozen=True)
class Mistake:
    true: int
    predicted: int
    count: int


@dataclass
class Outcomes:
    """Test-split results. Classification: predicted classes and the confusion matrix (rows
    the true class); regression: predicted and true values in the target's own units."""

    task: str
    total: int
    predicted: np.ndarray  # (n,) class indices, or values in the target's units
    truth: np.ndarray  # (n,) class indices, or values in the target's units
    matrix: np.ndarray | None = None  # (k, k) counts

    @property
    def correct(self) -> int:
        return int((self.predicted == self.truth).sum()) if self.matrix is not None else 0

    def mistakes(self, top: int = TOP_MISTAKES) -> list[Mistake]:
        """The most frequent (true, predicted) confusions, largest first."""
        if self.matrix is None:
            return []
        off = self.matrix.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:top]
        pairs = [np.unravel_index(i, off.shape) for i in order]
        return [Mistake(int(t), int(p), int(off[t, p])) for t, p in pairs if off[t, p] > 0]

    def majority(self) -> tuple[int, int]:
        """(class, count) of the most common true class: what always guessing it would get."""
        counts = np.bincount(self.truth, minlength=self.matrix.shape[0])
        return int(counts.argmax()), int(counts.max())

    @property
    def errors(self) -> np.ndarray:
        """Regression: |predicted - true| per sample, in the target's units."""
        return np.abs(self.predicted - self.truth)


def predicted_values(model: nn.Module, dataset: Any, x: torch.Tensor) -> np.ndarray:
    """A regression model's predictions for `x`, in the target's own units."""
    device = model_device(model)
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, x.shape[0], PREDICT_BATCH):
            chunks.append(model(x[start : start + PREDICT_BATCH].to(device))[:, 0].float().cpu())
    values = torch.cat(chunks) if chunks else torch.zeros(0)
    return dataset.denormalize_target(values).numpy().astype(np.float64)


def measure_outcomes(model: nn.Module, dataset: Any, split: str = "test") -> Outcomes:
    """Run the model over the whole split once."""
    samples = getattr(dataset, split)
    if dataset.task != "classification":
        truth = dataset.denormalize_target(samples.y.float()).numpy().astype(np.float64)
        return Outcomes(
            dataset.task, len(samples), predicted_values(model, dataset, samples.x), truth
        )
    predicted = predictions(model, samples.x)
    truth = samples.y.numpy().astype(np.int64)
    k = dataset.num_classes
    matrix = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
    return Outcomes(dataset.task, len(samples), predicted, truth, matrix)
