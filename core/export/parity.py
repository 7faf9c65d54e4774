"""The parity check every export passes: the exported file must answer as the studio's model.

Both are run on the same real samples, one at a time (batch 1) and all together (a larger
batch, which also proves the batch dimension is dynamic); the largest absolute difference
between their outputs is the export's figure of merit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from core.errors import ExportError

TOLERANCE = 1e-4  # float32: a faithful export differs by rounding only (~1e-7 .. 1e-6)
PARITY_BATCH = 64  # the larger batch the check runs at


def parity_samples(dataset, count: int = PARITY_BATCH) -> torch.Tensor:
    """Up to `count` real samples of the dataset (model input, normalized): its test split
    first, topped up from validation and train when the test split is smaller."""
    parts, needed = [], count
    for split in (dataset.test, dataset.val, dataset.train):
        if needed <= 0:
            break
        taken = split.x[:needed]
        if len(taken):
            parts.append(taken)
            needed -= len(taken)
    if not parts:
        raise ExportError(f"dataset {dataset.name!r} has no samples to check the export on")
    return torch.cat(parts).cpu()


def example_batch(samples: torch.Tensor) -> torch.Tensor:
    """Two samples to trace with: a batch of one would let the exporter fix the batch size."""
    return samples[:2] if len(samples) >= 2 else samples[:1].repeat(2, *[1] * (samples.dim() - 1))


def reference_outputs(model: nn.Module, samples: torch.Tensor) -> np.ndarray:
    """The studio model's own answers (eval mode, no gradients), as float32 numpy."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    with torch.no_grad():
        return model(samples.to(device)).float().cpu().numpy()


def max_abs_diff(
    model: nn.Module,
    run_exported: Callable[[torch.Tensor], np.ndarray],
    samples: torch.Tensor,
    *,
    what: str,
) -> float:
    """The largest |studio - exported| over `samples` at batch 1 and at batch len(samples);
    ExportError naming the number when it reaches TOLERANCE (or is not a number)."""
    if len(samples) == 0:
        raise ExportError(f"no samples to check the {what} on")
    worst = 0.0
    for batch in (samples[:1], samples):
        expected = reference_outputs(model, batch)
        got = np.asarray(run_exported(batch), dtype=np.float32)
        if got.shape != expected.shape:
            raise ExportError(
                f"the {what} answers with shape {list(got.shape)} at batch {len(batch)}; "
                f"the studio's model answers {list(expected.shape)}"
            )
        diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
        worst = max(worst, diff) if not np.isnan(diff) else float("nan")
        if np.isnan(worst):
            break
    if not worst < TOLERANCE:  # also catches NaN
        raise ExportError(
            f"the {what} does not answer as the studio's model: the largest absolute "
            f"difference on {len(samples)} real samples is {worst:.3g}, the limit is {TOLERANCE:g}"
        )
    return worst
