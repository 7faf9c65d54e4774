"""Runs stuck at chance level: ln(K) loss and 1/K accuracy, flagged with what to try."""

from __future__ import annotations

import math

from core.runs.diagnose import chance_loss, stuck_at_chance


def test_a_flat_loss_at_ln_k_is_flagged_with_what_to_try():
    # the run: SGD + cosine at lr 0.05, 9% on ten classes, loss flat at 2.30
    verdict = stuck_at_chance(
        num_classes=10,
        losses=[2.3031, 2.3019, 2.3026, 2.3008],
        accuracy=0.09,
        settings={"optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "scheduler": "cosine"},
    )
    assert verdict is not None
    assert math.isclose(verdict.chance_loss, math.log(10))
    assert "did not learn" in verdict.headline and "ln 10" in verdict.headline
    assert "9%" in verdict.headline and "about 10%" in verdict.headline
    assert any("adam" in tip for tip in verdict.suggestions)
    assert any("cosine" in tip for tip in verdict.suggestions)


def test_a_run_that_learned_is_not_flagged():
    assert stuck_at_chance(num_classes=10, losses=[2.30, 1.1, 0.4], accuracy=0.9) is None
    # the loss barely moved but the accuracy clearly beats guessing
    assert stuck_at_chance(num_classes=2, losses=[0.69, 0.68], accuracy=0.8) is None


def test_two_classes_use_their_own_chance_level():
    assert math.isclose(chance_loss(2), 0.6931, rel_tol=1e-3)
    assert stuck_at_chance(num_classes=2, losses=[0.6931, 0.6925], accuracy=0.5) is not None
    # a loss of 2.3 would be chance for ten classes, but is worse than guessing for two
    assert stuck_at_chance(num_classes=2, losses=[0.30], accuracy=None) is None


def test_nothing_to_say_without_classes_or_a_finite_loss():
    assert stuck_at_chance(num_classes=None, losses=[2.3]) is None  # regression
    assert stuck_at_chance(num_classes=1, losses=[0.0]) is None
    assert stuck_at_chance(num_classes=10, losses=[float("nan")]) is None
    assert stuck_at_chance(num_classes=10, losses=[]) is None


def test_suggestions_follow_the_settings():
    adam_too_fast = stuck_at_chance(
        num_classes=10, losses=[2.31], settings={"optimizer": "adam", "lr": 0.5}
    )
    assert adam_too_fast is not None
    assert adam_too_fast.suggestions[0].startswith("a smaller learning rate than 0.5")
    assert adam_too_fast.text.startswith(adam_too_fast.headline + " Try: ")
