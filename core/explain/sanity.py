"""Checks that tell a person when not to trust an explanation.

Two checks, both measured on the model:
- Integrated Gradients' convergence delta: attributions should add up to the change in the
  model's output between the baseline and the input (completeness); a large gap means the
  path integral was approximated badly.
- The model-randomization check (Adebayo et al., "Sanity Checks for Saliency Maps", 2018): run
  the same method on a copy of the model whose weights are re-initialized. If the attributions
  barely change (high rank correlation), the picture shows the input, not what the model learned.
  Ranks are taken on signed, channel-summed attributions: absolute values would mostly rank
  where the input differs from the baseline (digit strokes against a blank background), which
  is the same for any weights and would warn on every Integrated Gradients map.

What the randomization check cannot do: tell that the model itself is untrained. A randomly
initialized model compared with another random initialization still gives different maps.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor, nn

CONVERGENCE_TOLERANCE = 0.05  # delta above 5% of |f(x) - f(baseline)| is a visible warning
RANDOMIZATION_THRESHOLD = 0.6  # rank correlation with a random model's attributions


def convergence_warning(delta: float, output_change: float) -> str | None:
    """A sentence when |delta| is large relative to |f(x) - f(baseline)|, else None."""
    scale = max(abs(output_change), 1e-3)
    if abs(delta) <= CONVERGENCE_TOLERANCE * scale:
        return None
    return (
        "This explanation may be unreliable: the attributions add up to "
        f"{output_change - delta:.3g} but the model's score changed by {output_change:.3g} "
        f"between the blank input and this one (convergence delta {delta:.3g}, "
        f"{abs(delta) / scale:.0%} of the change). More integration steps may help."
    )


def randomization_warning(correlation: float) -> str | None:
    """A sentence when attributions survive re-initializing the model's weights, else None."""
    if correlation <= RANDOMIZATION_THRESHOLD:
        return None
    return (
        "This explanation barely depends on what the model learned: a copy of the model with "
        f"random weights gives a similar picture (rank correlation {correlation:.2f}). "
        "It mostly shows the input itself."
    )


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as Spearman's rho needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2.0)[inverse]


def spearman(a: Tensor | np.ndarray, b: Tensor | np.ndarray) -> float:
    """Spearman rank correlation of two equally sized arrays (0 when either is constant)."""
    a = np.asarray(a.detach().cpu() if isinstance(a, Tensor) else a, dtype=np.float64).ravel()
    b = np.asarray(b.detach().cpu() if isinstance(b, Tensor) else b, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"cannot correlate arrays of {a.size} and {b.size} values")
    ra, rb = _average_ranks(a), _average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0


def randomized_copy(model: nn.Module, *, seed: int = 0) -> nn.Module:
    """A deep copy of `model` with every weight re-initialized (the model "learned nothing").

    Layers with `reset_parameters` use PyTorch's own initialization; any parameter that is
    left unchanged (custom layers) has its values shuffled, which keeps its scale.
    """
    randomized = copy.deepcopy(model)
    before = {name: p.detach().clone() for name, p in randomized.named_parameters()}
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for module in randomized.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
        for name, parameter in randomized.named_parameters():
            if parameter.numel() > 1 and torch.equal(parameter, before[name]):
                flat = parameter.view(-1)
                flat.copy_(flat[torch.randperm(flat.numel(), device=flat.device)])
    return randomized.eval()
