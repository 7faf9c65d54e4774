"""Example predictions, right and wrong, each with its measured sentence and its attribution.

Classification goes through `core.explain.explain` (the Explain page's own sentence, trust check
included). Regression, which `explain` does not take, gets the same kind of measured sentence:
the most attributed tenth is hidden and the new prediction said.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from core.explain.explanation import default_baseline, explain, model_device, region_words
from core.explain.methods import compute_attributions
from core.explain.summary import hide, position_scores, region_noun, top_mask
from core.report.outcomes import Outcomes
from core.report.profiles import METHOD, N_STEPS, Progress, value_name

SAMPLES = 6  # examples in a report unless asked otherwise
BARELY = 0.05  # a change under 5% of the target's spread "barely moves" a predicted value


@dataclass
class Example:
    index: int  # row of the test split
    correct: bool  # classification: right answer; regression: within the median error
    sentence: str
    modality: str
    human: Any  # dataset.human(x): what a person looks at
    attribution: np.ndarray  # shaped like the sample
    tokens: list[str] | None = None
    warnings: list[str] = field(default_factory=list)
    headline: str = ""  # "a 3, and it says 3"


def choose_examples(outcomes: Outcomes, count: int) -> list[int]:
    """Up to `count` test rows: about half it gets wrong (different mistakes first), the rest
    right (different classes first). Regression: its closest and its farthest predictions."""
    if count <= 0 or outcomes.total == 0:
        return []
    if outcomes.matrix is None:
        order = np.argsort(outcomes.errors, kind="stable")
        near, far = order[: count - count // 2], order[::-1][: count // 2]
        return [int(i) for i in [*near, *far]]
    wrong = np.flatnonzero(outcomes.predicted != outcomes.truth)
    right = np.flatnonzero(outcomes.predicted == outcomes.truth)
    wanted_wrong = min(len(wrong), count // 2)
    chosen = _varied(wrong, outcomes, wanted_wrong) + _varied(right, outcomes, count - wanted_wrong)
    return chosen[:count]


def _varied(rows: np.ndarray, outcomes: Outcomes, count: int) -> list[int]:
    """`count` of `rows`, one per (true, predicted) pair before any pair repeats."""
    seen: set[tuple[int, int]] = set()
    first, rest = [], []
    for row in rows.tolist():
        pair = (int(outcomes.truth[row]), int(outcomes.predicted[row]))
        (rest if pair in seen else first).append(row)
        seen.add(pair)
    return (first + rest)[:count]


def explain_examples(
    model: nn.Module,
    dataset: Any,
    rows: list[int],
    outcomes: Outcomes,
    *,
    progress: Progress | None = None,
) -> list[Example]:
    """The measured sentence and attribution of each chosen test row."""
    examples = []
    for done, row in enumerate(rows):
        x = dataset.test.x[row]
        if dataset.task == "classification":
            examples.append(_classified(model, dataset, row, x, outcomes))
        else:
            examples.append(_valued(model, dataset, row, x, outcomes))
        if progress is not None:
            progress(done + 1, len(rows), "example predictions")
    return examples


def _classified(model: nn.Module, dataset: Any, row: int, x: torch.Tensor, outcomes) -> Example:
    label = int(outcomes.truth[row])
    explanation = explain(
        model, x, method=METHOD, dataset=dataset, label=label, n_steps=N_STEPS, sanity_check=True
    )
    said = explanation.prediction.label
    truth = dataset.class_names[label]
    headline = f"really {truth}, it says {said}"
    return Example(
        index=row,
        correct=explanation.prediction.index == label,
        sentence=explanation.summary,
        modality=explanation.modality,
        human=dataset.human(x),
        attribution=explanation.attribution.numpy(),
        tokens=explanation.tokens,
        warnings=list(explanation.warnings),
        headline=headline,
    )


def value_text(value: float) -> str:
    return f"{value:.4g}"


def _valued(model: nn.Module, dataset: Any, row: int, x: torch.Tensor, outcomes) -> Example:
    """A regression prediction: the value, the truth, and what hiding its top tenth does."""
    device = model_device(model)
    modality = dataset.modality
    x = x.to(device)
    baseline = default_baseline(x, modality, model, dataset)
    values = compute_attributions(
        model,
        x.unsqueeze(0),
        method=METHOD,
        targets=torch.zeros(1, dtype=torch.long, device=device),
        baselines=baseline.unsqueeze(0),
        n_steps=N_STEPS,
    ).values[0]
    scores = position_scores(values, modality)
    valid = (x != baseline) if modality == "text" else None
    mask = top_mask(scores.abs(), valid=valid)
    with torch.no_grad():
        hidden = model(hide(x, baseline, mask).unsqueeze(0))[:, 0].float().cpu()
    after = float(dataset.denormalize_target(hidden)[0])
    predicted, truth = float(outcomes.predicted[row]), float(outcomes.truth[row])
    name = value_name(dataset)
    words = region_words(mask.cpu(), scores.abs().cpu(), modality, x.cpu(), dataset)
    noun = region_noun(modality, int(mask.sum()))
    spread = float(np.std(outcomes.truth)) or 1.0
    sentence = (
        f"The model predicts {value_text(predicted)} for {name}; the true value is "
        f"{value_text(truth)} (off by {value_text(abs(predicted - truth))}). "
    )
    if abs(after - predicted) >= BARELY * spread:
        sentence += (
            f"It relied most on {words}: hiding {noun} moves its prediction to {value_text(after)}."
        )
    else:
        sentence += (
            f"It looked most at {words}, yet hiding {noun} barely moves its prediction "
            f"({value_text(after)}): it rests on more than {noun}."
        )
    tokens = None
    if modality == "text":
        vocabulary = list(dataset.vocabulary or [])
        tokens = [vocabulary[i] if 0 <= i < len(vocabulary) else f"#{i}" for i in x.tolist()]
    median = float(np.median(outcomes.errors))
    return Example(
        index=row,
        correct=abs(predicted - truth) <= median,
        sentence=sentence,
        modality=modality,
        human=dataset.human(x.cpu()),
        attribution=values.cpu().numpy(),
        tokens=tokens,
        headline=f"true {value_text(truth)}, predicted {value_text(predicted)}",
    )
