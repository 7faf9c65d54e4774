"""`explain()`: one sample, one method -> attribution, prediction, measured summary, warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from core.errors import ExplainError
from core.explain import METHOD_TITLES, METHODS
from core.explain.layers import find_embedding, pad_token_id
from core.explain.methods import compute_attributions, seeded
from core.explain.sanity import (
    convergence_warning,
    randomization_warning,
    randomized_copy,
    spearman,
)
from core.explain.summary import (
    RegionEffect,
    build_summary,
    describe_image_region,
    describe_items,
    describe_steps,
    hide,
    position_scores,
    region_noun,
    top_mask,
)
from core.facts import TOKEN_MODALITY, ModelFacts, input_dtype_for

RANDOM_REGIONS = 8  # random masks averaged for the "hide a random region instead" comparison
SHAP_BASELINES = 16
# two re-initialized copies, averaged: one copy alone warns on ~2% of a trained digits CNN's
# Grad-CAM / Occlusion maps by chance (coarse maps have few independent values)
RANDOMIZED_COPIES = 2  # training samples drawn as Gradient SHAP's baseline distribution


@dataclass(frozen=True)
class Prediction:
    index: int
    label: str
    probability: float


@dataclass
class Explanation:
    """Why the model said what it said about one sample, with one method."""

    method: str
    prediction: Prediction
    probabilities: list[dict[str, Any]]  # top 3: [{"label", "probability"}]
    attribution: Tensor  # shaped like the sample (no batch dim), float32 on CPU
    convergence_delta: float | None  # Integrated Gradients only
    summary: str
    warnings: list[str]
    modality: str  # "image" | "signal" | "text" | "tabular"
    target: int  # the class whose score was attributed
    tokens: list[str] | None = None  # text: one token per attribution score
    randomization_correlation: float | None = None  # None when the sanity check did not run
    extras: dict[str, Any] = field(default_factory=dict)  # measured effects

    def to_dict(self) -> dict[str, Any]:
        """The `studio explain --json` document (keys may be added, never renamed)."""
        return {
            "prediction": self.prediction.label,
            "prediction_index": self.prediction.index,
            "probabilities": self.probabilities,
            "method": self.method,
            "attribution": self.attribution.tolist(),
            "convergence_delta": self.convergence_delta,
            "summary": self.summary,
            "warnings": list(self.warnings),
            "target": self.target,
            "modality": self.modality,
            "tokens": self.tokens,
            "randomization_correlation": self.randomization_correlation,
            "effect": self.extras.get("effect"),
        }


def model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def input_facts(
    model: nn.Module, dataset: Any | None = None, facts: ModelFacts | None = None
) -> ModelFacts:
    """What the model reads: `facts` as given, else the dataset's, else the model's own (a
    studio model carries them), else nothing known (a hand-written module: the sample itself
    then says its shape and kind)."""
    if facts is not None:
        return facts
    if dataset is not None:
        return dataset.facts
    own = getattr(model, "facts", None)  # plain nn.Modules have none
    return own if isinstance(own, ModelFacts) else ModelFacts()


def sample_modality(x: Tensor, facts: ModelFacts) -> str:
    """The facts' modality; without one, read from the sample: whole numbers are token ids,
    (C, H, W) an image, (C, T) a signal, else a row of features."""
    if facts.modality is not None:
        return facts.modality
    if not torch.is_floating_point(x):
        return TOKEN_MODALITY
    return {3: "image", 2: "signal"}.get(x.dim(), "tabular")


def as_sample(x: Tensor, facts: ModelFacts) -> Tensor:
    """One sample without the batch dim, checked against the facts' input shape."""
    if facts.input_shape is None:
        return x
    expected = facts.input_shape
    if tuple(x.shape) == (1, *expected):
        x = x[0]
    if tuple(x.shape) != expected:
        raise ExplainError(
            f"the sample has shape {tuple(x.shape)} but this model takes {expected}; "
            "pass one sample of the dataset"
        )
    return x


def default_baseline(x: Tensor, modality: str, model: nn.Module, dataset: Any | None) -> Tensor:
    """ "Nothing there": pad tokens for text, a blank (raw zero) image or signal, the mean row
    for tables (raw zero means nothing in a table)."""
    if modality == "text":
        embedding = find_embedding(model)
        pad = pad_token_id(embedding, getattr(dataset, "vocabulary", None)) if embedding else 0
        return torch.full_like(x, pad)
    if dataset is not None and modality in ("image", "signal"):
        return dataset.normalize(torch.zeros(x.shape)).to(x.device, torch.float32)
    return torch.zeros_like(x)


def _class_names(dataset: Any | None, num_outputs: int) -> list[str]:
    names = list(getattr(dataset, "class_names", None) or [])
    return names if len(names) == num_outputs else [str(i) for i in range(num_outputs)]


def _tokens(x: Tensor, dataset: Any | None) -> list[str]:
    vocabulary = getattr(dataset, "vocabulary", None) or []
    return [vocabulary[i] if 0 <= i < len(vocabulary) else f"#{i}" for i in x.tolist()]


def region_words(
    mask: Tensor, scores: Tensor, modality: str, x: Tensor, dataset: Any | None
) -> str:
    """The masked positions of `x` in words: a part of an image, time steps, words, columns."""
    if modality == "image":
        return describe_image_region(mask, scores)
    if modality == "signal":
        return describe_steps(mask, scores)
    if modality == "text":
        return describe_items(mask, scores, _tokens(x, dataset), "word")
    names = getattr(dataset, "feature_names", None) or [f"feature {i}" for i in range(x.numel())]
    return describe_items(mask, scores, names, "feature")


def measure_region_effect(
    model: nn.Module,
    x: Tensor,
    baseline: Tensor,
    scores: Tensor,
    *,
    target: int,
    prediction: int,
    probability: float,
    modality: str,
    dataset: Any | None = None,
    seed: int = 0,
) -> RegionEffect:
    """Hide the most attributed ~10% (and, for comparison, random same-size regions) and
    re-run the model: the effect the summary reports."""
    valid = (x != baseline) if modality == "text" else None  # never "hide" a pad token
    mask = top_mask(scores, valid=valid)
    allowed = torch.nonzero(valid.flatten() if valid is not None else torch.ones(mask.numel()))
    allowed = allowed.flatten()
    count = int(mask.sum())
    generator = torch.Generator().manual_seed(seed)
    random_masks = []
    for _ in range(RANDOM_REGIONS):
        chosen = allowed[torch.randperm(allowed.numel(), generator=generator)[:count]]
        random_mask = torch.zeros(mask.numel(), dtype=torch.bool)
        random_mask[chosen] = True
        random_masks.append(random_mask.view(mask.shape))
    batch = torch.stack([hide(x, baseline, m) for m in [mask, *random_masks]])
    with torch.no_grad():
        probabilities = torch.softmax(model(batch).float(), dim=-1).cpu()
    return RegionEffect(
        mask=mask.cpu(),
        words=region_words(mask.cpu(), scores.cpu(), modality, x.cpu(), dataset),
        probability_before=probability,
        probability_after=float(probabilities[0, target]),
        prediction_before=prediction,
        prediction_after=int(probabilities[0].argmax()),
        random_probability_after=float(probabilities[1:, target].mean()),
        noun=region_noun(modality, count),
    )


def gradient_shap_baselines(dataset: Any, seed: int = 0) -> Tensor:
    """Gradient SHAP's baseline distribution: SHAP_BASELINES training samples drawn with
    `seed`, or the rows a dataset stand-in carries as `shap_baselines` (a bundle stores the
    ones drawn here with seed 0, so a machine without the dataset explains alike)."""
    stored = getattr(dataset, "shap_baselines", None)
    if stored is not None:
        return stored
    with seeded(seed):
        train_x = dataset.train.x
        rows = torch.randperm(train_x.shape[0])[:SHAP_BASELINES]
    return train_x[rows]


def explain(
    model: nn.Module,
    x: Tensor,
    *,
    method: str,
    target: int | None = None,
    baseline: Tensor | None = None,
    dataset: Any | None = None,
    n_steps: int = 50,
    internal_batch_size: int = 64,
    device: str | torch.device | None = None,
    label: int | None = None,
    sanity_check: bool = True,
    seed: int = 0,
    facts: ModelFacts | None = None,
) -> Explanation:
    """Explain the model's prediction for one sample `x` (the dataset's normalized input).

    target: the class to explain (default: the predicted one). baseline: "nothing there"
    (default: blank image / signal, pad tokens). label: the true class, named in the summary
    when the model got it wrong. sanity_check: also run the method on a randomized copy of
    the model (about doubles the cost) and warn when the picture barely changes.
    `internal_batch_size` bounds how many inputs go through the model at once. `facts`: what
    the model reads (default: the dataset's, else the model's own; see `input_facts`). The model is
    put in eval mode and runs where its weights are (or on `device`, moving it there).
    """
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if getattr(dataset, "task", "classification") != "classification":
        raise ExplainError("explanations are for classification models; this run does regression")
    if device is not None and torch.device(device) != model_device(model):
        model = model.to(device)
    device = model_device(model)
    model.eval()
    facts = input_facts(model, dataset, facts)
    x = as_sample(torch.as_tensor(x), facts)
    modality = sample_modality(x, facts)
    x = x.to(device, input_dtype_for(modality))
    baseline = (
        default_baseline(x, modality, model, dataset)
        if baseline is None
        else torch.as_tensor(baseline).to(device, x.dtype).expand_as(x)
    )

    inputs = x.unsqueeze(0)
    with torch.no_grad():
        logits = model(torch.cat([inputs, baseline.unsqueeze(0)])).float()
    if logits.dim() != 2:
        raise ExplainError(
            f"the model returns an output shaped {tuple(logits.shape[1:])}; explanations need "
            "one score per class"
        )
    probabilities = torch.softmax(logits[0], dim=-1).cpu()
    class_names = _class_names(dataset, probabilities.numel())
    predicted = int(probabilities.argmax())
    target = predicted if target is None else int(target)
    if not 0 <= target < probabilities.numel():
        raise ExplainError(
            f"target class {target} does not exist; this model has {probabilities.numel()} "
            f"classes (0–{probabilities.numel() - 1})"
        )

    shap_baselines = None
    if method == "gradient_shap" and dataset is not None and modality != "text":
        shap_baselines = gradient_shap_baselines(dataset, seed).to(device, torch.float32)
    options = dict(
        method=method,
        targets=torch.tensor([target], device=device),
        baselines=baseline.unsqueeze(0),
        n_steps=n_steps,
        internal_batch_size=internal_batch_size,
        shap_baselines=shap_baselines,
        seed=seed,
    )
    result = compute_attributions(model, inputs, **options)
    attribution = result.values[0].cpu()

    warnings: list[str] = []
    delta = None
    if result.convergence_delta is not None:
        delta = float(result.convergence_delta[0])
        output_change = float(logits[0, target] - logits[1, target])
        message = convergence_warning(delta, output_change)
        if message:
            warnings.append(message)
    correlation = None
    if sanity_check:
        scores = position_scores(attribution, modality)
        correlations = []
        for copy_seed in range(seed, seed + RANDOMIZED_COPIES):
            randomized = randomized_copy(model, seed=copy_seed)
            random_values = compute_attributions(randomized, inputs, **options).values[0].cpu()
            correlations.append(spearman(scores, position_scores(random_values, modality)))
        correlation = sum(correlations) / len(correlations)
        message = randomization_warning(correlation)
        if message:
            warnings.append(message)

    scores = position_scores(attribution, modality)
    effect = measure_region_effect(
        model,
        x,
        baseline,
        scores.to(device),
        target=target,
        prediction=predicted,
        probability=float(probabilities[target]),
        modality=modality,
        dataset=dataset,
        seed=seed,
    )
    top = torch.topk(probabilities, min(3, probabilities.numel()))
    ranked = [(class_names[int(i)], float(p)) for p, i in zip(top.values, top.indices, strict=True)]
    true_label = class_names[int(label)] if label is not None else None
    summary = build_summary(
        label=class_names[predicted],
        probability=float(probabilities[predicted]),
        runner_up=ranked[1] if len(ranked) > 1 else None,
        true_label=true_label,
        target_label=class_names[target] if target != predicted else None,
        effect=effect,
        method_title=METHOD_TITLES[method],
        class_names=class_names,
        warnings=warnings,
    )
    return Explanation(
        method=method,
        prediction=Prediction(predicted, class_names[predicted], float(probabilities[predicted])),
        probabilities=[{"label": name, "probability": p} for name, p in ranked],
        attribution=attribution,
        convergence_delta=delta,
        summary=summary,
        warnings=warnings,
        modality=modality,
        target=target,
        tokens=_tokens(x.cpu(), dataset) if modality == "text" else None,
        randomization_correlation=correlation,
        extras={"effect": effect.to_dict(), "label": true_label},
    )
