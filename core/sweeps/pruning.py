"""The training loop's link to a sweep: report the objective each epoch, stop when pruned.

The worker adds `trial_callbacks(run)` to the loop's callbacks. For a sweep trial that is one
`TrialReporter`: after each validation it reports the objective (val_accuracy, ...) to the
Optuna trial with the epoch as the step, and asks the sweep's pruner whether to go on; a "no"
makes `control` answer "prune", so the loop ends the run `pruned` at its next step,
checkpointed, with every curve it recorded kept. Reporting never fails a run: an error is
logged and training goes on unpruned.
"""

from __future__ import annotations

import logging
from typing import Any

from core.store import db
from core.store import sweeps as store
from core.train.callbacks import Callback, Control, MetricRecord

log = logging.getLogger("studio.sweeps")

SWEEP_KIND = "sweep"  # origin["kind"] of a sweep's trial runs


class TrialReporter(Callback):
    """Reports one trial's objective per epoch and asks its pruner (on the training thread:
    a decision taken at an epoch end applies from the very next step, the same on every run)."""

    background = False

    def __init__(self, sweep: store.Sweep, trial: store.SweepTrial) -> None:
        self.sweep = sweep
        self.trial_row = trial
        self.objective = sweep.objective
        self.pruned = False
        self._trial: Any = None

    def on_metrics(self, records: list[MetricRecord]) -> None:
        reports = [r for r in records if r.name == self.objective]
        if not reports or self.pruned:
            return
        try:
            trial = self._optuna_trial()
            for record in reports:
                trial.report(float(record.value), step=int(record.epoch))
            if self.sweep.pruner != "none" and trial.should_prune():
                self.pruned = True
                log.info(
                    "sweep %d trial %d pruned at epoch %d",
                    self.sweep.id,
                    self.trial_row.number,
                    reports[-1].epoch,
                )
        except Exception as error:  # a finished trial (sweep stopped), a busy database...
            log.warning(
                "sweep %d trial %d: report skipped: %s", self.sweep.id, self.trial_row.number, error
            )

    def control(self, *, step: int) -> Control:
        return "prune" if self.pruned else "continue"

    def _optuna_trial(self) -> Any:
        if self._trial is None:
            import optuna

            from core.sweeps import study as studies

            self._trial = optuna.trial.Trial(
                studies.load(self.sweep), self.trial_row.study_trial_id
            )
        return self._trial


def trial_callbacks(run: Any) -> list[Callback]:
    """The callbacks a sweep trial's run trains with ([] for any other run, or when its sweep
    cannot be read: the run then trains unpruned)."""
    origin = getattr(run, "origin", None)
    if not isinstance(origin, dict) or origin.get("kind") != SWEEP_KIND:
        return []
    try:
        found = db.call(store.trial_of_run, run_id=run.id, readonly=True)
    except Exception as error:
        log.warning("run %d: its sweep trial cannot be read: %s", run.id, error)
        return []
    if found is None:
        return []
    trial, sweep = found
    return [TrialReporter(sweep, trial)]
