"""How far to trust the explanations, measured on this run's model over many test samples.

- Randomization (Adebayo et al. 2018, as core/explain/sanity.py does for one sample): the same
  samples explained by a copy of the model with random weights; a high rank correlation means
  the pictures show the input, not what the model learned.
- Faithfulness (deletion): hide the most attributed tenth of each input and, separately, a
  random tenth of the same size; explanations that point at what matters hurt the model more.
- Captum's `infidelity` (how well the attributions predict the change of the score when the
  input is nudged at random) and `sensitivity_max` (how much the attributions move when the
  input is nudged within a small radius), made relative so they can be said in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.explain.explanation import model_device
from core.explain.methods import compute_attributions, seeded
from core.explain.sanity import RANDOMIZATION_THRESHOLD, randomized_copy, spearman
from core.explain.summary import TOP_FRACTION, hide, top_mask
from core.report.profiles import METHOD, Attributed, Progress, attribute

RANDOMIZATION_SAMPLES = 32  # samples explained again by the randomized model
FAITHFULNESS_SAMPLES = 200  # samples whose top tenth is hidden
RANDOM_MASKS = 4  # random same-size masks per sample, averaged
METRIC_SAMPLES = 8  # samples for Captum's infidelity and sensitivity_max
PERTURBATIONS = 8  # random nudges per sample for those two
NOISE_STD = 0.1  # infidelity's nudge: a tenth of a standard deviation of the (normalized) input
SENSITIVITY_RADIUS = 0.02  # sensitivity_max's radius, as a share of the input's range
METRIC_STEPS = 16  # integration steps inside sensitivity_max (it explains every nudge again)


@dataclass(frozen=True)
class Randomization:
    samples: int
    correlation: float  # mean Spearman correlation with the randomized model's attributions
    warned: int  # samples above core.explain.sanity.RANDOMIZATION_THRESHOLD


@dataclass(frozen=True)
class Faithfulness:
    """Classification: mean drop of the predicted class's probability and answers changed;
    regression: mean |change| of the predicted value in its own units (flips unused)."""

    samples: int
    hidden_fraction: float
    top_change: float
    random_change: float
    top_flips: int
    random_flips: int


@dataclass(frozen=True)
class Robustness:
    samples: int
    infidelity: float  # Captum's, attributions scaled to fit (normalize=True), mean per sample
    unexplained_share: float | None  # infidelity / mean squared change of the score
    sensitivity: float  # Captum's sensitivity_max, mean per sample
    relative_sensitivity: float | None  # mean sensitivity / mean size of the attributions
    radius: float  # the nudge's bound, in the model's input units
    radius_share: float = SENSITIVITY_RADIUS


def _spread(count: int, wanted: int) -> Tensor:
    """`wanted` positions spread evenly over `count` (all of them when fewer)."""
    if count <= wanted:
        return torch.arange(count)
    return torch.as_tensor(np.linspace(0, count - 1, wanted).round().astype(np.int64))


def _valid_positions(attributed: Attributed, rows: Tensor) -> Tensor | None:
    """Text: the positions that hold a word (never pad tokens); None elsewhere."""
    if attributed.modality != "text":
        return None
    return attributed.x[rows] != attributed.baseline


def randomization(
    model: nn.Module, attributed: Attributed, *, n_steps: int, progress: Progress | None = None
) -> Randomization:
    """Explain the same samples with a randomly re-initialized copy and compare rankings."""
    rows = _spread(len(attributed.targets), RANDOMIZATION_SAMPLES)
    randomized = randomized_copy(model, seed=0)
    random_scores, _ = attribute(
        randomized,
        attributed.x[rows],
        attributed.targets[rows],
        attributed.baseline,
        modality=attributed.modality,
        n_steps=n_steps,
        progress=progress,
        note="trust check: a model with random weights",
    )
    valid = _valid_positions(attributed, rows)
    correlations = []
    for i, row in enumerate(rows.tolist()):
        ours, theirs = attributed.scores[row], random_scores[i]
        if valid is not None:
            ours, theirs = ours[valid[i]], theirs[valid[i]]
        correlations.append(spearman(ours, theirs))
    warned = sum(c > RANDOMIZATION_THRESHOLD for c in correlations)
    mean = float(np.mean(correlations)) if correlations else 0.0
    return Randomization(len(correlations), mean, int(warned))


def _outputs(model: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return model(x.to(model_device(model))).float().cpu()


def faithfulness(model: nn.Module, attributed: Attributed, dataset: Any) -> Faithfulness:
    """Hide the top tenth of each sample's positions vs random tenths; measure the effect."""
    rows = _spread(len(attributed.targets), FAITHFULNESS_SAMPLES)
    regression = dataset.task != "classification"
    valid = _valid_positions(attributed, rows)
    generator = torch.Generator().manual_seed(0)
    top, random = [], []
    for i, row in enumerate(rows.tolist()):
        x, scores = attributed.x[row], attributed.scores[row]
        allowed = valid[i] if valid is not None else torch.ones_like(scores, dtype=torch.bool)
        ranking = scores.abs() if regression else scores  # a value: strongest either way
        mask = top_mask(ranking, valid=allowed)
        top.append(hide(x, attributed.baseline, mask))
        positions = torch.nonzero(allowed.flatten()).flatten()
        for _ in range(RANDOM_MASKS):
            chosen = positions[torch.randperm(len(positions), generator=generator)]
            random_mask = torch.zeros(mask.numel(), dtype=torch.bool)
            random_mask[chosen[: int(mask.sum())]] = True
            random.append(hide(x, attributed.baseline, random_mask.view(mask.shape)))
    before = _outputs(model, attributed.x[rows])
    after_top = _outputs(model, torch.stack(top))
    after_random = _outputs(model, torch.stack(random))
    targets = attributed.targets[rows]
    n = len(rows)
    if regression:
        scale = _target_scale(dataset)
        top_change = float((after_top[:, 0] - before[:, 0]).abs().mean()) * scale
        random_change = float(
            (after_random[:, 0].view(n, RANDOM_MASKS) - before[:, :1]).abs().mean()
        )
        return Faithfulness(n, TOP_FRACTION, top_change, random_change * scale, 0, 0)
    p_before = torch.softmax(before, dim=1)[torch.arange(n), targets]
    p_top = torch.softmax(after_top, dim=1)[torch.arange(n), targets]
    random_probs = torch.softmax(after_random, dim=1).view(n, RANDOM_MASKS, -1)
    p_random = random_probs[torch.arange(n), :, targets]  # (n, RANDOM_MASKS)
    top_flips = int((after_top.argmax(dim=1) != targets).sum())
    random_answers = random_probs.argmax(dim=2)  # (n, RANDOM_MASKS)
    random_flips = float((random_answers != targets.unsqueeze(1)).float().mean(dim=1).sum())
    return Faithfulness(
        n,
        TOP_FRACTION,
        float((p_before - p_top).mean()),
        float((p_before.unsqueeze(1) - p_random).mean()),
        top_flips,
        round(random_flips),
    )


def _target_scale(dataset: Any) -> float:
    """How many of the target's own units one standardized unit is (1 when not standardized)."""
    normalization = getattr(dataset, "target_normalization", None)
    return float(normalization.std.flatten()[0]) if normalization is not None else 1.0


def robustness(model: nn.Module, attributed: Attributed, dataset: Any) -> Robustness | None:
    """Captum's infidelity and sensitivity_max on a few samples; None for text (token ids
    cannot be nudged a little)."""
    from captum.metrics import infidelity, sensitivity_max

    if attributed.modality == "text":
        return None
    device = model_device(model)
    rows = _spread(len(attributed.targets), METRIC_SAMPLES)
    x = attributed.x[rows].to(device)
    targets = attributed.targets[rows].to(device)
    baseline = attributed.baseline.unsqueeze(0).to(device)

    def explain_batch(inputs: Tensor | tuple[Tensor], target: Tensor) -> Tensor | tuple[Tensor]:
        # sensitivity_max hands the inputs over as a tuple and wants the same form back
        batch = inputs[0] if isinstance(inputs, tuple) else inputs
        values = compute_attributions(
            model, batch, method=METHOD, targets=target, baselines=baseline, n_steps=METRIC_STEPS
        ).values
        return (values,) if isinstance(inputs, tuple) else values

    def nudge(inputs: Tensor) -> tuple[Tensor, Tensor]:
        noise = torch.randn(inputs.shape, device=inputs.device) * NOISE_STD
        return noise, inputs - noise

    with seeded(0):
        attributions = explain_batch(x, targets)
        infid = infidelity(
            model,
            nudge,
            x,
            attributions,
            target=targets,
            n_perturb_samples=PERTURBATIONS,
            normalize=True,
        ).detach()
        # the mean squared change of the score under the same kind of nudge: infidelity's scale
        repeated = x.repeat_interleave(PERTURBATIONS, dim=0)
        _noise, nudged = nudge(repeated)
        chosen = targets.repeat_interleave(PERTURBATIONS)
        index = torch.arange(len(chosen), device=device)
        with torch.no_grad():
            change = model(repeated)[index, chosen] - model(nudged)[index, chosen]
        spread = change.view(len(rows), PERTURBATIONS).pow(2).mean(dim=1)
        span = float(dataset.test.x.max() - dataset.test.x.min()) or 1.0
        radius = SENSITIVITY_RADIUS * span
        sensitivity = sensitivity_max(
            explain_batch, x, target=targets, perturb_radius=radius, n_perturb_samples=4
        ).detach()
    size = attributions.flatten(1).norm(dim=1)
    share = (infid / spread.clamp(min=1e-12)).clamp(max=1.0)
    # relative to the typical size of an explanation: a sample whose attributions are all near
    # zero (a row at the average, for a table) would make a per-sample ratio explode
    relative = sensitivity.mean() / size.mean().clamp(min=1e-12)
    return Robustness(
        samples=len(rows),
        infidelity=float(infid.mean()),
        unexplained_share=float(share.mean()) if float(spread.mean()) > 1e-10 else None,
        sensitivity=float(sensitivity.mean()),
        relative_sensitivity=float(relative) if float(size.mean()) > 0 else None,
        radius=radius,
    )
