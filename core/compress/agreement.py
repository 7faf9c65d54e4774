"""Does the compressed model still look at the same things? Attribution agreement.

For a fixed set of test samples (the first `samples` of the test split), both models explain
their score for the true class with Integrated Gradients (core.explain, the same call the
Explain page makes). The two maps of one sample agree when the Spearman rank correlation of
their magnitudes, over the features the sample has (not blank), is at least `threshold`: the
compressed model ranks the same pixels, steps or tokens as most important. The result is a
count and a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

AGREEMENT_THRESHOLD = 0.5  # Spearman's rho: a clear positive rank correlation
AGREEMENT_SAMPLES = 100
NOUNS = {"image": "images", "signal": "signals", "tabular": "rows", "text": "texts"}


@dataclass
class Agreement:
    """How many of the fixed test samples the two models explain alike."""

    samples: int
    agreeing: int
    threshold: float
    median_rho: float
    sentence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "agreeing": self.agreeing,
            "threshold": self.threshold,
            "median_rho": self.median_rho,
            "method": "integrated_gradients",
            "sentence": self.sentence,
        }


def integrated_gradients_maps(model: nn.Module, data: Any, samples: int) -> np.ndarray:
    """IG maps (samples, features) of the first `samples` test samples, for their true class;
    NaN where the sample equals the baseline (IG is exactly 0 there for any model)."""
    from core.explain import compute_attributions
    from core.explain.explanation import default_baseline  # the Explain page's "nothing there"

    x = data.test.x[:samples].cpu()
    targets = data.test.y[:samples].cpu()
    baseline = default_baseline(x[:1], data.modality, model, data)
    values = compute_attributions(
        model.eval().cpu(),
        x,
        method="integrated_gradients",
        targets=targets,
        baselines=baseline,
        n_steps=32,
    ).values
    values = values.reshape(len(x), -1).numpy().copy()
    values[(x == baseline).reshape(len(x), -1).numpy()] = np.nan
    return values


def attribution_agreement(
    parent: nn.Module,
    compressed: nn.Module,
    data: Any,
    *,
    samples: int = AGREEMENT_SAMPLES,
    threshold: float = AGREEMENT_THRESHOLD,
    what: str = "compressed",
) -> Agreement | None:
    """Per-sample Spearman correlation of |IG| maps, parent vs compressed; None for
    regression data (no class to explain) or an empty test split."""
    if data.task != "classification" or len(data.test) == 0:
        return None
    samples = min(samples, len(data.test))
    with torch.random.fork_rng(devices=[]):
        before = np.abs(integrated_gradients_maps(parent, data, samples))
        after = np.abs(integrated_gradients_maps(compressed, data, samples))
    rhos = np.array([_rank_correlation(a, b) for a, b in zip(before, after, strict=True)])
    agreeing = int((rhos >= threshold).sum())
    noun = "digits" if data.name == "digits" else NOUNS.get(data.modality, "samples")
    sentence = (
        f"The {what} model relies on the same regions for {agreeing} of {samples} test {noun} "
        f"(Spearman rank correlation of Integrated Gradients maps ≥ {threshold:g} over the "
        f"features that are not blank; "
        f"median {float(np.median(rhos)):.2f})."
    )
    return Agreement(samples, agreeing, threshold, float(np.median(rhos)), sentence)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho over the features the sample has (blank pixels, equal to the baseline,
    are 0 in every map and would make any two maps look alike); 0 where a map ranks nothing."""
    present = ~(np.isnan(a) | np.isnan(b))
    a, b = a[present], b[present]
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)
