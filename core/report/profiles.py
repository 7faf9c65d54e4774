"""What the model looks for in each class: attributions averaged over the samples of a class.

For each class, up to `per_class` test samples the model *says* are that class are attributed
to that class's score with Integrated Gradients (one method for every kind of data: it works
through an Embedding for text and needs no convolution). The average is drawn per kind:
images a heatmap over the class's average picture, signals the time steps, tables the columns
(by name, with the direction of their effect), text the words. Regression has one "class": the
value, attributed over the whole test sample.

Computing is kept apart from drawing (core/report/figures.py): the Explain page's per-class tab
and the shareable report use the same numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.explain.explanation import default_baseline, model_device
from core.explain.methods import compute_attributions
from core.explain.samples import predictions
from core.explain.summary import position_scores

PER_CLASS = 30  # samples averaged per class: a steady map, and quick on two CPU cores
N_STEPS = 24  # integration steps per sample; the built-in models converge well within this
CHUNK = 32  # samples attributed per call (each goes through the model N_STEPS times)
TOP_WORDS = 8  # words listed per class for text
MIN_WORD_COUNT = 2  # a word seen once says little about a class (used when enough words repeat)
METHOD = "integrated_gradients"
METHOD_WORDS = "Integrated Gradients"

# progress(done, total, note): called after each chunk of samples
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class WordEffect:
    """A word and how much it pushes towards the class (mean attribution where it appears)."""

    word: str
    push: float
    count: int  # texts of the class it appears in


@dataclass(frozen=True)
class ColumnEffect:
    """A table column: how much it matters (mean |attribution|) and which way: +1 when higher
    values push towards the class (or the value up), -1 when lower values do."""

    name: str
    weight: float
    direction: int


@dataclass
class ClassProfile:
    """The averaged explanation of one class (or of the value, for regression)."""

    index: int
    name: str
    count: int  # samples averaged (0: the model never says this class on the test set)
    scores: np.ndarray | None  # mean position scores: (H, W) image, (T,) signal, (F,) table
    average_input: Any = None  # dataset.human of the average sample (images and signals)
    words: list[WordEffect] = field(default_factory=list)  # text: most towards the class first
    columns: list[ColumnEffect] = field(default_factory=list)  # tables: most important first


@dataclass
class Attributed:
    """The test samples the report measured: which rows, the class each was attributed to, and
    one attribution score per position (channels summed)."""

    modality: str
    indices: np.ndarray  # (n,) rows of the split
    x: Tensor  # (n, *sample_shape) on the CPU
    targets: Tensor  # (n,) the output attributed: the predicted class, 0 for regression
    scores: Tensor  # (n, *positions)
    baseline: Tensor  # (*sample_shape): "nothing there"
    convergence_delta: Tensor | None  # (n,)


@dataclass
class Profiles:
    """Every class's profile, and the attributed samples they were averaged from."""

    task: str
    modality: str
    classes: list[ClassProfile]
    attributed: Attributed
    method: str = METHOD
    n_steps: int = N_STEPS


def choose_samples(
    predicted: np.ndarray | None, num_classes: int, size: int, per_class: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, groups): up to `per_class` rows the model assigns to each class, spread evenly
    over the split; regression (predicted None) takes up to `per_class` * 4 rows, group 0."""
    if predicted is None:
        count = min(size, per_class * 4)
        rows = np.unique(np.linspace(0, size - 1, count).round().astype(np.int64))
        return rows, np.zeros(len(rows), dtype=np.int64)
    rows, groups = [], []
    for group in range(num_classes):
        members = np.flatnonzero(predicted == group)
        if len(members) > per_class:
            members = members[np.linspace(0, len(members) - 1, per_class).round().astype(int)]
        rows.extend(members.tolist())
        groups.extend([group] * len(members))
    return np.asarray(rows, dtype=np.int64), np.asarray(groups, dtype=np.int64)


def attribute(
    model: nn.Module,
    x: Tensor,
    targets: Tensor,
    baseline: Tensor,
    *,
    modality: str,
    n_steps: int = N_STEPS,
    progress: Progress | None = None,
    note: str = "attributing",
) -> tuple[Tensor, Tensor | None]:
    """Integrated Gradients for every row of `x` in chunks: (position scores, deltas)."""
    device = model_device(model)
    scores, deltas = [], []
    for start in range(0, len(x), CHUNK):
        batch = x[start : start + CHUNK].to(device)
        result = compute_attributions(
            model,
            batch,
            method=METHOD,
            targets=targets[start : start + CHUNK].to(device),
            baselines=baseline.unsqueeze(0).to(device),
            n_steps=n_steps,
            internal_batch_size=CHUNK * 8,
        )
        scores.extend(position_scores(values, modality) for values in result.values.cpu())
        if result.convergence_delta is not None:
            deltas.append(result.convergence_delta.cpu())
        if progress is not None:
            progress(min(len(x), start + CHUNK), len(x), note)
    stacked = torch.stack(scores) if scores else torch.zeros(0)
    return stacked, (torch.cat(deltas) if deltas else None)


def class_profiles(
    model: nn.Module,
    dataset: Any,
    *,
    split: str = "test",
    per_class: int = PER_CLASS,
    n_steps: int = N_STEPS,
    predicted: np.ndarray | None = None,
    progress: Progress | None = None,
) -> Profiles:
    """Average attributions per class over the `split` samples the model assigns to each class
    (the whole split's sample for regression). `predicted`: the model's classes for the split,
    when the caller has them already."""
    model.eval()
    samples = getattr(dataset, split)
    regression = dataset.task != "classification"
    if not regression and predicted is None:
        predicted = predictions(model, samples.x)
    rows, groups = choose_samples(
        None if regression else predicted, dataset.num_classes, len(samples), per_class
    )
    x = samples.x[torch.as_tensor(rows, dtype=torch.long)]
    targets = torch.as_tensor(groups, dtype=torch.long)
    modality = dataset.modality
    baseline = default_baseline(samples.x[0], modality, model, dataset).cpu()
    scores, deltas = attribute(
        model, x, targets, baseline, modality=modality, n_steps=n_steps, progress=progress
    )
    attributed = Attributed(modality, rows, x, targets, scores, baseline, deltas)
    names = list(dataset.class_names) if not regression else [value_name(dataset)]
    classes = [
        _profile(dataset, attributed, group, names[group], regression)
        for group in range(len(names))
    ]
    return Profiles(dataset.task, modality, classes, attributed, n_steps=n_steps)


def value_name(dataset: Any) -> str:
    """What a regression model predicts, in words: its target column, else 'the value'."""
    return str(getattr(dataset, "target_name", None) or "the value")


def _profile(
    dataset: Any, attributed: Attributed, group: int, name: str, regression: bool
) -> ClassProfile:
    members = torch.nonzero(attributed.targets == group).flatten()
    if regression:
        members = torch.arange(len(attributed.targets))
    if len(members) == 0:
        return ClassProfile(group, name, 0, None)
    scores = attributed.scores[members].double()  # (m, *positions)
    x = attributed.x[members]
    modality = attributed.modality
    profile = ClassProfile(group, name, len(members), None)
    if modality == "text":
        profile.words = _word_effects(dataset, x, scores, regression)
        return profile
    if modality == "tabular":
        profile.columns = _column_effects(dataset, x, scores, attributed.baseline)
        by_name = {c.name: c for c in profile.columns}  # scores in column order, signed
        names = _feature_names(dataset, x.shape[1])
        profile.scores = np.array([by_name[n].weight * by_name[n].direction for n in names])
        return profile
    # where it looks: signed evidence for a class; for a value, how strongly either way
    mean = (scores.abs() if regression else scores).mean(dim=0)
    profile.scores = mean.numpy()
    profile.average_input = dataset.human(x.float().mean(dim=0))
    return profile


def _feature_names(dataset: Any, count: int) -> list[str]:
    names = list(getattr(dataset, "feature_names", None) or [])
    return names if len(names) == count else [f"feature {i}" for i in range(count)]


def _column_effects(
    dataset: Any, x: Tensor, scores: Tensor, baseline: Tensor
) -> list[ColumnEffect]:
    """Columns by mean |attribution|; the direction is the sign of attribution x (value -
    baseline) summed over the rows: + when values above the baseline push towards the class."""
    names = _feature_names(dataset, x.shape[1])
    offset = x.double() - baseline.double()  # (m, F): how far each value is from "average"
    weight = scores.abs().mean(dim=0)
    slope = (scores * offset).sum(dim=0)
    effects = [
        ColumnEffect(name, float(w), 1 if float(s) >= 0 else -1)
        for name, w, s in zip(names, weight.tolist(), slope.tolist(), strict=True)
    ]
    return sorted(effects, key=lambda effect: -effect.weight)


def _word_effects(dataset: Any, x: Tensor, scores: Tensor, regression: bool) -> list[WordEffect]:
    """Words by their mean attribution where they appear (towards the class first); for a
    value, by mean |attribution| with the sign of their mean push."""
    vocabulary = list(getattr(dataset, "vocabulary", None) or [])
    skipped = {"<pad>", "<unk>"}
    total: dict[str, float] = defaultdict(float)
    texts: dict[str, set[int]] = defaultdict(set)
    seen: dict[str, int] = defaultdict(int)
    for row, (ids, values) in enumerate(zip(x.tolist(), scores.tolist(), strict=True)):
        for token, value in zip(ids, values, strict=True):
            word = vocabulary[token] if 0 <= token < len(vocabulary) else f"#{token}"
            if word in skipped:
                continue
            total[word] += value
            seen[word] += 1
            texts[word].add(row)
    effects = [WordEffect(w, total[w] / seen[w], len(texts[w])) for w in total]
    repeated = [e for e in effects if e.count >= MIN_WORD_COUNT]
    if len(repeated) >= TOP_WORDS:
        effects = repeated
    key = (lambda e: -abs(e.push)) if regression else (lambda e: -e.push)
    return sorted(effects, key=key)[:TOP_WORDS]
