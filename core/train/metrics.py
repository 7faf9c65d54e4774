"""Metrics: accuracy, confusion matrix, MAE and R², and evaluating a model on a split.

Everything accumulates on the device; `evaluate` makes a single host sync at the end.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

DEFAULT_EVAL_BATCH = 1024


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max matches the target class."""
    return (logits.argmax(dim=-1) == targets).float().mean().item()


def confusion_matrix(
    predictions: torch.Tensor, targets: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """(num_classes, num_classes) int64 counts, rows = true class, columns = predicted class."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def mean_absolute_error(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    return (predictions - targets).abs().mean().item()


def r2_score(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - SSE/SST (uniform average over output columns), as scikit-learn computes it."""
    targets = targets.reshape(len(targets), -1).double()
    predictions = predictions.reshape(len(predictions), -1).double()
    sse = ((targets - predictions) ** 2).sum(dim=0)
    sst = ((targets - targets.mean(dim=0)) ** 2).sum(dim=0)
    return _r2_from_sums(sse, sst).item()


def _r2_from_sums(sse: torch.Tensor, sst: torch.Tensor) -> torch.Tensor:
    # a constant target has no variance to explain: perfect if predicted exactly, else 0
    per_column = torch.where(sst > 0, 1 - sse / sst.clamp_min(1e-300), (sse == 0).double())
    return per_column.mean()


def match_regression_shape(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """A (batch, 1) output against (batch,) targets (and the like) is reshaped to the targets."""
    if outputs.shape != targets.shape and outputs.numel() == targets.numel():
        return outputs.reshape(targets.shape)
    return outputs


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    task: str,
    num_classes: int = 0,
    loss_fn: nn.Module,
    batch_size: int = DEFAULT_EVAL_BATCH,
    autocast: AbstractContextManager | None = None,
    with_confusion: bool = False,
    target_scale: float = 1.0,
) -> dict[str, object]:
    """Loss and accuracy (or MAE/R²) of `model` on (x, y), in eval mode, in large batches.

    Returns floats keyed loss / accuracy or loss / mae / r2, and `confusion` (list of lists)
    when asked. `target_scale` turns the MAE of standardized targets back into the target's own
    units (R² does not depend on the scale; the loss stays on the standardized targets). The
    caller restores train mode.
    """
    was_training = model.training
    model.eval()
    count = len(x)
    device = x.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    abs_sum = torch.zeros((), dtype=torch.float64, device=device)
    confusion = None
    if task == "regression":
        y_flat = y.reshape(count, -1).double()
        target_mean = y_flat.mean(dim=0)
        sst = ((y_flat - target_mean) ** 2).sum(dim=0)
        sse = torch.zeros_like(sst)
    with torch.inference_mode():
        for start in range(0, count, batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            with autocast or nullcontext():
                outputs = model(xb)
            outputs = outputs.float()
            if task == "classification":
                loss_sum += loss_fn(outputs, yb).double() * len(xb)  # loss_fn averages
                predicted = outputs.argmax(dim=-1)
                correct += (predicted == yb).sum()
                if with_confusion:
                    batch_confusion = confusion_matrix(predicted, yb, num_classes)
                    confusion = (
                        batch_confusion if confusion is None else confusion + batch_confusion
                    )
            else:
                outputs = match_regression_shape(outputs, yb)
                loss_sum += loss_fn(outputs, yb).double() * len(xb)
                difference = (outputs.double() - yb.double()).reshape(len(xb), -1)
                abs_sum += difference.abs().sum()
                sse += (difference**2).sum(dim=0)
    model.train(was_training)
    if task == "classification":
        loss, hits = torch.stack([loss_sum / max(count, 1), correct.double()]).tolist()
        result: dict[str, object] = {"loss": loss, "accuracy": hits / max(count, 1)}
        if with_confusion and confusion is not None:
            result["confusion"] = confusion.tolist()
        return result
    columns = y.reshape(count, -1).shape[1]
    r2 = _r2_from_sums(sse, sst)
    loss, mae, r2_value = torch.stack(
        [loss_sum / max(count, 1), abs_sum / max(count * columns, 1), r2]
    ).tolist()
    return {"loss": loss, "mae": mae * target_scale, "r2": r2_value}
