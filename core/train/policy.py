"""The training loop's decisions, as pure functions of counters and clocks (no torch, no I/O).

The loop asks these at each step or epoch end; each is tested alone
(tests/core/train/test_policy.py). Two rules hold them together:

- What is *recorded* (training-loss points, validations, early stopping) depends only on step
  counts, so the same settings give the same curves, and a resumed run records exactly what an
  uninterrupted one would.
- What is *saved* (checkpoints) may depend on the wall clock: a checkpoint captures the state
  without changing it, so when one is taken never changes the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

VALIDATION_POINTS = 50  # validations per run at most (plus the final one), unless early stopping
# needs one per epoch: enough for a smooth validation curve, and on runs of many tiny epochs the
# validation passes stay a small share of the time


def epoch_of_step(step: int, steps_per_epoch: int) -> int:
    """The 1-based epoch that optimizer step `step` (1-based) belongs to; 1 before any step.

    Every epoch has exactly `steps_per_epoch` steps, so completed epochs are
    `step // steps_per_epoch` and the position in the current one `step % steps_per_epoch`."""
    return max(1, -(-step // steps_per_epoch))


def validation_every(steps_per_epoch: int, total_steps: int, *, early_stopping: bool) -> int:
    """Validate every this many epochs: each epoch when early stopping counts epochs or the run
    has at most VALIDATION_POINTS of them, else spread to about VALIDATION_POINTS points."""
    epochs = -(-total_steps // steps_per_epoch)
    if early_stopping or epochs <= VALIDATION_POINTS:
        return 1
    return -(-epochs // VALIDATION_POINTS)


def should_validate(step: int, *, steps_per_epoch: int, total_steps: int, every: int) -> bool:
    """After `step` steps: at every `every`-th epoch end, and always after the last step."""
    if step >= total_steps:
        return True
    return step % steps_per_epoch == 0 and (step // steps_per_epoch) % every == 0


def should_record(step: int, *, log_every: int) -> bool:
    """Record the training loss (and with it the one host sync) every `log_every` steps;
    validations and the end record it too, whatever the step."""
    return step % log_every == 0


def checkpoint_due(*, now: float, last_checkpoint_at: float | None, every_s: float) -> bool:
    """At an epoch end: checkpoint if none was taken yet in this call (the first epoch end
    gives a new run a model to look at and a point to resume from) or `every_s` seconds have
    passed since the last one. Pause, stop and the end checkpoint unconditionally."""
    return last_checkpoint_at is None or now - last_checkpoint_at >= every_s


@dataclass(frozen=True)
class EarlyStopping:
    """The best validation loss so far and the validations since it last improved."""

    best_val_loss: float = math.inf
    bad_epochs: int = 0


def early_stop_decision(
    state: EarlyStopping, val_loss: float, *, patience: int | None
) -> tuple[EarlyStopping, bool]:
    """The state after an epoch-end validation with `val_loss`, and whether to stop now:
    `patience` validations in a row without a lower loss (never when patience is None)."""
    if val_loss < state.best_val_loss:
        state = EarlyStopping(best_val_loss=val_loss, bad_epochs=0)
    else:
        state = replace(state, bad_epochs=state.bad_epochs + 1)
    return state, patience is not None and state.bad_epochs >= patience
