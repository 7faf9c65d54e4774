"""Runs that finished without learning: a loss that never left chance level.

A classifier that guesses uniformly among K classes has a cross-entropy of ln(K) (2.30 for ten
classes) and an accuracy of about 1/K. A run whose loss stays there "completes" like any other,
so the pages ask this module whether it learned anything, and what to try when it did not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# the loss must fall at least this far below ln(K) to count as having left chance: noise and
# label smoothing keep a stuck run within a few percent of ln(K)
LEFT_CHANCE = 0.10
# accuracy within this factor of 1/K is "what guessing gets"
CHANCE_ACCURACY_FACTOR = 1.5


@dataclass(frozen=True)
class ChanceVerdict:
    """A run that did not learn: how it shows, and what a person can try."""

    chance_loss: float  # ln(num_classes)
    best_loss: float  # the lowest loss the run recorded
    accuracy: float | None
    headline: str
    suggestions: tuple[str, ...]

    @property
    def text(self) -> str:
        """The headline and the suggestions as one paragraph."""
        return self.headline + " Try: " + "; ".join(self.suggestions) + "."


def chance_loss(num_classes: int) -> float:
    """The cross-entropy of a uniform guess among `num_classes` classes."""
    return math.log(num_classes)


def stuck_at_chance(
    *,
    num_classes: int | None,
    losses: Iterable[float],
    accuracy: float | None = None,
    settings: Mapping[str, object] | None = None,
) -> ChanceVerdict | None:
    """A verdict when a classifier's loss never fell below chance level, else None.

    losses: every loss the run recorded (train and validation; the lowest one decides).
    accuracy: its best or final accuracy, when known; an accuracy clearly above 1/K clears the
    run even if the loss did not move much. settings: the run's TrainConfig values, to tailor
    the suggestions. Regression runs (num_classes None or < 2) and runs without a finite loss
    recorded get None: there is nothing to compare with.
    """
    if not num_classes or num_classes < 2:
        return None
    finite = [float(v) for v in losses if v is not None and math.isfinite(float(v))]
    if not finite:
        return None
    level = chance_loss(num_classes)
    best = min(finite)
    if best < level * (1 - LEFT_CHANCE):
        return None
    if accuracy is not None and accuracy > CHANCE_ACCURACY_FACTOR / num_classes:
        return None
    guess = f"{1 / num_classes:.0%}"
    said = f" and accuracy {accuracy:.0%}" if accuracy is not None else ""
    headline = (
        f"This run did not learn: its loss never went below {best:.2f}, the {level:.2f} "
        f"(= ln {num_classes}) of a model that guesses among {num_classes} classes{said} "
        f"(guessing gets about {guess})."
    )
    return ChanceVerdict(
        chance_loss=level,
        best_loss=best,
        accuracy=accuracy,
        headline=headline,
        suggestions=tuple(suggestions_for(settings or {})),
    )


def suggestions_for(settings: Mapping[str, object]) -> list[str]:
    """What to change, most likely first, from the run's own settings."""
    optimizer = str(settings.get("optimizer") or "adam")
    lr = settings.get("lr")
    lr = float(lr) if isinstance(lr, int | float) else None
    tips: list[str] = []
    if optimizer == "sgd":
        tips.append("adam at lr 0.001, which needs less tuning than SGD")
        if not settings.get("momentum"):
            tips.append("SGD with momentum 0.9")
        tips.append("more epochs: SGD starts slowly")
    elif lr is not None and lr > 0.01:
        tips.append(f"a smaller learning rate than {lr:g} (0.001 suits adam)")
    elif lr is not None and lr < 1e-4:
        tips.append(f"a larger learning rate than {lr:g} (0.001 suits adam)")
    else:
        tips.append("more epochs, or a learning rate ten times larger or smaller")
    if settings.get("scheduler") not in (None, "none"):
        tips.append(f"no schedule (the {settings['scheduler']} schedule changes the learning rate)")
    tips.append("checking that the model can see the input (Build says how each layer reshapes it)")
    return tips
