"""Plain-language summaries grounded in an effect measured on the model.

The most attributed region (top ~10% of pixels, time steps, tokens or features) is hidden —
set to the baseline, "nothing there" — and the model is run again; the summary reports how its
confidence moved and names the region in words a non-engineer uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

TOP_FRACTION = 0.10  # share of positions that counts as "the region the model relied on"
MEANINGFUL_DROP = 0.05  # a confidence drop smaller than 5 points "barely changes" it


@dataclass
class RegionEffect:
    """What hiding the most attributed region did to the predicted class's probability."""

    mask: Tensor  # (*positions) bool: the hidden positions
    words: str  # the region in words: "the top of the image", "time steps 12–19", ...
    probability_before: float
    probability_after: float
    prediction_before: int
    prediction_after: int  # the class the model picks once the region is hidden
    random_probability_after: float  # same number of random positions hidden, for comparison
    noun: str = "that region"  # how the sentence refers back to it: "that word", "those steps"

    def to_dict(self) -> dict[str, object]:
        return {
            "region": self.words,
            "hidden_fraction": float(self.mask.float().mean()),
            "probability_before": self.probability_before,
            "probability_after": self.probability_after,
            "prediction_before": self.prediction_before,
            "prediction_after": self.prediction_after,
            "random_probability_after": self.random_probability_after,
        }


def position_scores(attribution: Tensor, modality: str) -> Tensor:
    """One score per position a person can point at: pixels (H, W), time steps (T,), tokens
    (T,) or features (F,). Channels are summed, so signed evidence adds up as it does for IG."""
    if modality in ("image", "signal") and attribution.dim() >= 2:
        return attribution.sum(dim=0)
    return attribution


def top_mask(
    scores: Tensor, *, fraction: float = TOP_FRACTION, valid: Tensor | None = None
) -> Tensor:
    """The `fraction` highest-scoring positions (at least one), among `valid` ones if given."""
    flat = scores.flatten().float().clone()
    allowed = valid.flatten() if valid is not None else torch.ones_like(flat, dtype=torch.bool)
    count = max(1, round(fraction * int(allowed.sum())))
    flat[~allowed] = float("-inf")
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask[torch.topk(flat, count).indices] = True
    return mask.view(scores.shape)


def hide(x: Tensor, baseline: Tensor, mask: Tensor) -> Tensor:
    """`x` with the masked positions (broadcast over leading channel dims) set to `baseline`."""
    full = mask.expand(x.shape) if mask.dim() < x.dim() else mask
    return torch.where(full.to(x.device), baseline.expand_as(x).to(x.device), x)


def describe_image_region(mask: Tensor, weights: Tensor) -> str:
    """'the top-left corner', 'the centre', ... from the centre of mass of the hidden pixels."""
    height, width = mask.shape
    w = (weights.clamp(min=0) * mask).float()
    if float(w.sum()) <= 0:
        w = mask.float()
    rows = torch.arange(height, dtype=torch.float32).view(-1, 1)
    cols = torch.arange(width, dtype=torch.float32).view(1, -1)
    row = float((w * rows).sum() / w.sum()) / max(1, height - 1)
    col = float((w * cols).sum() / w.sum()) / max(1, width - 1)
    vertical = "top" if row < 1 / 3 else "bottom" if row > 2 / 3 else ""
    horizontal = "left" if col < 1 / 3 else "right" if col > 2 / 3 else ""
    if vertical and horizontal:
        return f"the {vertical}-{horizontal} corner"
    if vertical:
        return f"the {vertical} of the image"
    if horizontal:
        return f"the {horizontal} side of the image"
    return "the centre of the image"


def describe_steps(mask: Tensor, weights: Tensor) -> str:
    """'time steps 12–19 (of 40)', or where the mass sits when the steps are scattered."""
    steps = torch.nonzero(mask.flatten()).flatten().tolist()
    length = mask.numel()
    first, last = steps[0], steps[-1]
    if first == last:
        return f"time step {first} (of {length})"
    if last - first + 1 <= max(3, 2 * len(steps)):
        return f"time steps {first}–{last} (of {length})"
    w = weights.flatten().clamp(min=0) * mask.flatten()
    centre = (
        round(float((w * torch.arange(length)).sum() / w.sum())) if float(w.sum()) > 0 else first
    )
    return f"a few scattered time steps, mostly around step {centre} (of {length})"


def describe_items(mask: Tensor, weights: Tensor, names: list[str], kind: str) -> str:
    """'the words "great" and "fun"' for text, 'the features "age" and "income"' for tables."""
    positions = torch.nonzero(mask.flatten()).flatten().tolist()
    positions.sort(key=lambda i: -float(weights.flatten()[i]))
    quoted = [f'"{names[i]}"' for i in positions[:3]]
    noun = kind if len(quoted) == 1 else f"{kind}s"
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" and {quoted[-1]}"
    return f"the {noun} {listed}"


def region_noun(modality: str, count: int) -> str:
    """How a sentence refers back to the hidden positions."""
    if modality == "text":
        return "that word" if count == 1 else "those words"
    if modality == "tabular":
        return "that feature" if count == 1 else "those features"
    if modality == "signal":
        return "that time step" if count == 1 else "those time steps"
    return "that region"


def percent(probability: float) -> str:
    """93%, with the ends honest: 'over 99%' rather than a rounded 100%."""
    if probability > 0.995:
        return "over 99%"
    if probability < 0.005:
        return "under 1%"
    return f"{probability:.0%}"


def confidence_sentence(
    label: str, probability: float, runner_up: tuple[str, float] | None, true_label: str | None
) -> str:
    if probability >= 0.5 or runner_up is None:
        sentence = f"The model is {percent(probability)} sure this is {label}"
    else:
        sentence = (
            f"The model's best guess is {label}, but it is only {percent(probability)} sure "
            f"(next: {runner_up[0]} at {percent(runner_up[1])})"
        )
    if true_label is not None and true_label != label:
        sentence += f"; it is actually {true_label}"
    return sentence + "."


def change_text(before: float, after: float) -> str:
    """How a probability moved, in words that say something: "from 93% to 90%", or "it stays
    over 99%" when both ends read the same (never "over 99% → 99%")."""
    if percent(before) == percent(after) or (before > 0.99 and after > 0.99):
        return f"it stays {percent(after)}"
    return f"from {percent(before)} to {percent(after)}"


def effect_sentence(
    effect: RegionEffect,
    method_title: str | None = None,
    class_names: list[str] | None = None,
    target_label: str | None = None,
) -> str:
    """What hiding the region did; `target_label` when a class other than the prediction was
    explained. The sentence speaks of the model, never of the method that pointed at the
    region (`method_title` is accepted for callers that pass it, and not used)."""
    drop = effect.probability_before - effect.probability_after
    confidence = "its confidence" if target_label is None else f"the chance of {target_label}"
    if drop >= MEANINGFUL_DROP:
        sentence = (
            f"It relied most on {effect.words}: hiding {effect.noun} lowers {confidence} to "
            f"{percent(effect.probability_after)}"
        )
        if effect.prediction_after != effect.prediction_before and class_names:
            changed = class_names[effect.prediction_after]
            sentence += f" (it would then say {changed})"
        return sentence + "."
    return (
        f"It looked most at {effect.words}, yet hiding {effect.noun} barely matters "
        f"({confidence}: {change_text(effect.probability_before, effect.probability_after)}): "
        f"the decision rests on more than {effect.noun}."
    )


def build_summary(
    *,
    label: str,
    probability: float,
    runner_up: tuple[str, float] | None,
    true_label: str | None,
    target_label: str | None = None,
    effect: RegionEffect | None,
    method_title: str,
    class_names: list[str],
    warnings: list[str],
) -> str:
    """Two or three sentences: how sure, what it relied on (measured), whether to trust it."""
    sentences = [confidence_sentence(label, probability, runner_up, true_label)]
    if effect is not None:
        sentences.append(effect_sentence(effect, method_title, class_names, target_label))
    if warnings:
        sentences.append("Treat this explanation with caution (see the warning below).")
    return " ".join(sentences)
