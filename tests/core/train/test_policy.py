"""The loop's decisions alone: epochs, validation, recording, checkpoints, early stopping."""

from __future__ import annotations

import math

import pytest

from core.train.policy import (
    VALIDATION_POINTS,
    EarlyStopping,
    checkpoint_due,
    early_stop_decision,
    epoch_of_step,
    should_record,
    should_validate,
    validation_every,
)


@pytest.mark.parametrize(
    ("step", "epoch"), [(0, 1), (1, 1), (18, 1), (19, 2), (36, 2), (37, 3), (40, 3)]
)
def test_the_1_based_epoch_of_a_step(step, epoch):
    assert epoch_of_step(step, 18) == epoch


def test_short_runs_and_early_stopping_validate_every_epoch():
    assert validation_every(18, 18 * VALIDATION_POINTS, early_stopping=False) == 1
    assert validation_every(2, 2 * 1000, early_stopping=True) == 1


def test_runs_of_many_tiny_epochs_validate_about_fifty_times():
    # the MNIST-1D recipe: 8000 steps of 36 per epoch = 223 epochs (the last one partial)
    every = validation_every(36, 8000, early_stopping=False)
    assert every == 5
    points = sum(should_validate(s, steps_per_epoch=36, total_steps=8000, every=every)
                 for s in range(1, 8001))  # fmt: skip
    assert points == 44 + 1  # every 5th epoch end, plus the last step
    assert points <= VALIDATION_POINTS + 1


def test_validation_falls_on_every_nth_epoch_end_and_on_the_last_step():
    def validated(total: int) -> list[int]:
        return [
            s
            for s in range(1, total + 1)
            if should_validate(s, steps_per_epoch=4, total_steps=total, every=3)
        ]

    assert validated(30) == [12, 24, 30]  # 30 ends mid-epoch: validated because it is last
    assert validated(24) == [12, 24]


def test_the_training_loss_is_recorded_every_log_interval():
    assert [s for s in range(1, 61) if should_record(s, log_every=25)] == [25, 50]


def test_the_first_checkpoint_is_due_at_once_then_after_the_interval():
    assert checkpoint_due(now=100.0, last_checkpoint_at=None, every_s=5.0)
    assert not checkpoint_due(now=104.9, last_checkpoint_at=100.0, every_s=5.0)
    assert checkpoint_due(now=105.0, last_checkpoint_at=100.0, every_s=5.0)
    assert checkpoint_due(now=100.0, last_checkpoint_at=100.0, every_s=0.0)  # 0: every epoch


def test_early_stopping_counts_validations_without_a_lower_loss():
    state = EarlyStopping()
    assert state.best_val_loss == math.inf
    decisions = []
    for loss in (1.0, 0.8, 0.8, 0.9, 0.7, 0.75, 0.71):
        state, stop = early_stop_decision(state, loss, patience=2)
        decisions.append(stop)
    assert decisions == [False, False, False, True, False, False, True]
    assert state == EarlyStopping(best_val_loss=0.7, bad_epochs=2)


def test_without_patience_early_stopping_tracks_the_best_but_never_stops():
    state = EarlyStopping()
    for loss in (1.0, 2.0, 3.0, 4.0):
        state, stop = early_stop_decision(state, loss, patience=None)
        assert not stop
    assert state == EarlyStopping(best_val_loss=1.0, bad_epochs=3)
