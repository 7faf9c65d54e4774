"""Metrics against answers known by hand (and scikit-learn)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F  # noqa: N812

from core.train.metrics import (
    accuracy,
    confusion_matrix,
    evaluate,
    mean_absolute_error,
    r2_score,
)


def test_confusion_matrix_rows_are_true_classes():
    predicted = torch.tensor([0, 1, 1, 2, 2, 2])
    actual = torch.tensor([0, 1, 2, 2, 2, 0])
    assert confusion_matrix(predicted, actual, 3).tolist() == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]


def test_accuracy_mae_and_r2():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1])) == pytest.approx(2 / 3)
    targets = torch.tensor([1.0, 2.0, 3.0, 4.0])
    predictions = torch.tensor([1.5, 2.0, 2.5, 4.0])
    assert mean_absolute_error(predictions, targets) == pytest.approx(0.25)
    # 1 - SSE/SST = 1 - 0.5 / 5
    assert r2_score(predictions, targets) == pytest.approx(0.9)


def test_evaluate_matches_a_direct_computation_across_batches():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    result = evaluate(
        model,
        x,
        y,
        task="classification",
        num_classes=3,
        loss_fn=F.cross_entropy,
        batch_size=7,
        with_confusion=True,
    )
    logits = model(x)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert result["accuracy"] == pytest.approx(accuracy(logits, y))
    assert result["confusion"] == confusion_matrix(logits.argmax(1), y, 3).tolist()
    assert model.training  # the caller's mode is restored

    regression = torch.nn.Linear(4, 1)
    targets = torch.randn(50)
    values = evaluate(regression, x, targets, task="regression", loss_fn=F.mse_loss, batch_size=16)
    out = regression(x).squeeze(1)
    assert values["loss"] == pytest.approx(F.mse_loss(out, targets).item(), rel=1e-5)
    assert values["mae"] == pytest.approx(mean_absolute_error(out, targets), rel=1e-5)
    assert values["r2"] == pytest.approx(r2_score(out, targets), rel=1e-5)
