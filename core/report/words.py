"""The report's sentences: every number in them was measured on this run's model and data.

Plain text here; the HTML layer escapes it (class names, column names and words come from the
data and are never markup).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.explain.sanity import RANDOMIZATION_THRESHOLD
from core.explain.summary import describe_image_region, describe_steps, top_mask
from core.report.examples import value_text
from core.report.outcomes import Outcomes
from core.report.profiles import ClassProfile, value_name
from core.report.trust import Faithfulness, Randomization, Robustness

SAMPLE_NOUNS = {  # (one, many)
    "image": ("image", "images"),
    "signal": ("signal", "signals"),
    "tabular": ("row", "rows"),
    "text": ("text", "texts"),
}
CLASS_NOUNS = {"digits": "digit", "mnist1d": "digit", "mnist": "digit"}
LISTED_CLASSES = 12  # more classes than this are named in part
TOP_COLUMNS = 3
NOTABLE = 0.1  # share of the strongest column's or word's weight worth naming


def quoted(name: object) -> str:
    return f"“{name}”"


def sample_noun(modality: str, count: int = 2) -> str:
    one, many = SAMPLE_NOUNS.get(modality, ("sample", "samples"))
    return one if count == 1 else many


def class_noun(dataset: Any) -> str:
    return CLASS_NOUNS.get(dataset.name, "class")


def share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "–"


def listed(names: list[str]) -> str:
    words = [quoted(n) for n in names]
    if len(words) > LISTED_CLASSES:
        shown = words[: LISTED_CLASSES - 2]
        return ", ".join(shown) + f" and {len(words) - len(shown)} more"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def what_it_does(dataset: Any) -> str:
    about = f" ({dataset.description})" if dataset.description else ""
    many = sample_noun(dataset.modality)
    if dataset.task != "classification":
        return f"This model reads {many}{about} and predicts {value_name(dataset)}."
    return (
        f"This model reads {many}{about} and says which of {len(dataset.class_names)} "
        f"classes each one belongs to: {listed(list(dataset.class_names))}."
    )


def how_well(dataset: Any, outcomes: Outcomes) -> list[str]:
    many = sample_noun(dataset.modality, outcomes.total)
    n = outcomes.total
    if outcomes.matrix is None:
        errors = outcomes.errors
        guess = float(np.mean(outcomes.truth))
        guessing = float(np.mean(np.abs(outcomes.truth - guess)))
        return [
            f"On {n} test {many} it never saw while learning, its prediction of "
            f"{value_name(dataset)} is off by {value_text(float(errors.mean()))} on average; "
            f"half of its predictions are within {value_text(float(np.median(errors)))} of "
            "the true value.",
            f"Always predicting the average ({value_text(guess)}) would be off by "
            f"{value_text(guessing)} on average.",
        ]
    correct = outcomes.correct
    majority, count = outcomes.majority()
    noun = class_noun(dataset)
    return [
        f"On {n} test {many} it never saw while learning, it names the right {noun} for "
        f"{correct} of {n} ({share(correct, n)}).",
        f"Always answering the most common {noun}, {quoted(dataset.class_names[majority])}, "
        f"would be right for {count} of {n} ({share(count, n)}).",
    ]


def mistakes(dataset: Any, outcomes: Outcomes) -> list[str]:
    wrong = outcomes.total - outcomes.correct
    if wrong == 0:
        return [
            f"It makes no mistakes on the {outcomes.total} test {sample_noun(dataset.modality)}."
        ]
    names = dataset.class_names
    found = outcomes.mistakes()
    first = found[0]
    sentences = [
        f"It gets {wrong} of {outcomes.total} wrong. Its most common mistake: it says "
        f"{quoted(names[first.predicted])} when the answer is {quoted(names[first.true])} "
        f"({times(first.count)})."
    ]
    if len(found) > 1:
        others = [
            f"{quoted(names[m.predicted])} for {quoted(names[m.true])} ({times(m.count)})"
            for m in found[1:]
        ]
        sentences.append("Next: it says " + "; ".join(others) + ".")
    return sentences


def times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def class_record(dataset: Any, outcomes: Outcomes, profile: ClassProfile) -> str:
    """How often it says the class, and how often it is right when it does."""
    many = sample_noun(dataset.modality)
    said = int(outcomes.matrix[:, profile.index].sum())
    right = int(outcomes.matrix[profile.index, profile.index])
    actual = int(outcomes.matrix[profile.index].sum())
    name = quoted(profile.name)
    if said == 0:
        return (
            f"It never says {name} on the test set (which holds {actual} of them), so there "
            "is nothing to average for this class."
        )
    return (
        f"It says {name} for {said} test {sample_noun(dataset.modality, said)} and is right for "
        f"{right} of them; of the {actual} {many} that really are {name}, it finds {right}."
    )


def looks_for(dataset: Any, profile: ClassProfile, regression: bool) -> str:
    """Where the averaged attribution of the class points, in words."""
    if profile.count == 0:
        return ""
    many = sample_noun(dataset.modality, profile.count)
    averaged = f"Averaged over {profile.count} {many}"
    if dataset.modality in ("image", "signal"):
        weights = torch.as_tensor(np.asarray(profile.scores))
        mask = top_mask(weights)
        where = (
            describe_image_region(mask, weights)
            if dataset.modality == "image"
            else describe_steps(mask, weights)
        )
        colours = (
            "darker red: more influence, either way"
            if regression
            else f"red: what pushes it towards {quoted(profile.name)}, blue: what pushes it away"
        )
        return f"{averaged}, it relies most on {where} ({colours})."
    if dataset.modality == "tabular":
        parts = []
        top = profile.columns[0].weight if profile.columns else 0.0
        # a column with a tenth of the top one's weight has no direction worth saying
        strong = [c for c in profile.columns if c.weight >= NOTABLE * top] or profile.columns
        for column in strong[:TOP_COLUMNS]:
            level = "higher" if column.direction > 0 else "lower"
            effect = (
                f"pushes {value_name(dataset)} up"
                if regression
                else f"pushes towards {quoted(profile.name)}"
            )
            parts.append(f"{level} {quoted(column.name)} {effect}")
        return f"{averaged}, the columns that matter most: " + "; ".join(parts) + "."
    if not profile.words:
        return f"{averaged}, no word stands out."
    if regression:
        parts = [
            f"{quoted(w.word)} pushes it {'up' if w.push > 0 else 'down'} ({w.push:+.2g})"
            for w in profile.words[:5]
        ]
        return (
            f"{averaged}, the words that move {value_name(dataset)} most: " + "; ".join(parts) + "."
        )
    towards = [w for w in profile.words if w.push > 0][:5]
    if not towards:
        return f"{averaged}, no word pushes towards {quoted(profile.name)} on average."
    parts = [
        f"{quoted(w.word)} (in {w.count} {sample_noun(dataset.modality, w.count)})" for w in towards
    ]
    return (
        f"{averaged}, the words that push most towards {quoted(profile.name)}: "
        + ", ".join(parts)
        + "."
    )


def randomization_sentence(check: Randomization, modality: str) -> str:
    many = sample_noun(modality, check.samples)
    correlation = 0.0 if abs(check.correlation) < 0.005 else check.correlation  # never "-0.00"
    measured = (
        f"average rank correlation {correlation:.2f}; a warning starts at "
        f"{RANDOMIZATION_THRESHOLD:.2f}"
    )
    start = (
        f"Randomization check: the same {check.samples} test {many} were explained again by a "
        "copy of the model with random weights."
    )
    if check.warned == 0:
        return (
            f"{start} Every picture changed ({measured}), so the pictures show what this model "
            "learned, not just the input."
        )
    if check.warned * 2 < check.samples:
        return (
            f"{start} Most pictures changed ({measured}); for {check.warned} of them the picture "
            "barely depends on what the model learned."
        )
    return (
        f"{start} For {check.warned} of them the picture barely changed ({measured}): the "
        "pictures mostly show the inputs themselves, not what the model learned. Treat them with "
        "caution."
    )


def faithfulness_sentence(check: Faithfulness, dataset: Any) -> str:
    many = sample_noun(dataset.modality, check.samples)
    tenth = f"{check.hidden_fraction:.0%}"
    if dataset.task != "classification":
        name = value_name(dataset)
        sentence = (
            f"Faithfulness check: on {check.samples} test {many}, hiding the {tenth} of each input "
            f"the explanation points at moves the prediction of {name} by "
            f"{value_text(check.top_change)} on average; hiding a random {tenth} moves it by "
            f"{value_text(check.random_change)}."
        )
    else:
        sentence = (
            f"Faithfulness check: on {check.samples} test {many}, hiding the {tenth} of each input "
            "the explanation points at lowers the model's confidence in its answer by "
            f"{check.top_change * 100:.0f} points on average and changes the answer for "
            f"{check.top_flips} of them; hiding a random {tenth} lowers it by "
            f"{check.random_change * 100:.0f} points (about {check.random_flips} answers change)."
        )
    if check.top_change > 2 * check.random_change and check.top_change > 0:
        return sentence + " The explanations point at the parts that matter to the model."
    if check.top_change > check.random_change:
        return (
            sentence
            + " The explanations point at parts that matter only a little more than random ones."
        )
    return (
        sentence
        + " Hiding what the explanations point at does no more than hiding at random: do not rely on the pictures."
    )


def robustness_sentences(check: Robustness | None, modality: str) -> list[str]:
    if check is None:
        return [
            "Captum's infidelity and sensitivity checks are not measured for text: words cannot "
            "be nudged by a small amount."
        ]
    many = sample_noun(modality, check.samples)
    sentences = []
    if check.unexplained_share is not None:
        explained = 1 - check.unexplained_share
        how = "well" if explained >= 0.7 else "in part" if explained >= 0.3 else "poorly"
        sentences.append(
            f"Infidelity (Captum), on {check.samples} test {many}: when an input is nudged a "
            f"little at random, its explanation accounts for {explained:.0%} of how the model's "
            f"score moves, so it predicts the model's reaction {how} (infidelity "
            f"{check.infidelity:.3g}; 0 would be perfect)."
        )
    if check.relative_sensitivity is not None:
        change = check.relative_sensitivity
        verdict = (
            "the explanations are stable"
            if change < 0.25
            else "the explanations are somewhat sensitive to tiny changes"
            if change < 0.6
            else "the explanations are fragile: changes too small to notice change them a lot"
        )
        sentences.append(
            f"Sensitivity (Captum's sensitivity_max): nudging each input by at most "
            f"{check.radius:.2g} ({check.radius_share:.0%} of the inputs' range) changes its "
            f"explanation by up to {change:.0%} of its size on average: {verdict}."
        )
    return sentences
