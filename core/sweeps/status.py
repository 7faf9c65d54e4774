"""Reading a sweep: its trials (parameters, state, value), the best one, the best-so-far curve.

`sweep_status` is the `studio sweep-status --json` document:
{"sweep_id", "status", "trials": [{"number", "run_id", "params", "value", "state"}],
"best": {"run_id", "params", "value"}} plus a few more keys (name, objective, direction,
sampler, pruner, budget). A trial's `state` is its run's status (queued, running, paused,
completed, pruned, failed, cancelled), "refused" when its combination of parameters made no
valid run, "deleted" when its run was deleted since. Its `value` is the best objective value
its run recorded so far (every trial, pruned ones included); `best` is the best completed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import NotFoundError
from core.states import RunStatus
from core.store import db
from core.store import sweeps as store

REFUSED = "refused"
DELETED = "deleted"


@dataclass(frozen=True)
class TrialView:
    number: int
    run_id: int | None
    params: dict[str, Any]
    value: float | None
    state: str
    steps: int  # optimizer steps trained (what pruning saves)
    error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "run_id": self.run_id,
            "params": self.params,
            "value": self.value,
            "state": self.state,
            "steps": self.steps,
            "error": self.error,
        }


def get_sweep(sweep_id: int) -> store.Sweep:
    sweep = db.call(store.get_sweep, sweep_id=sweep_id, readonly=True)
    if sweep is None:
        raise NotFoundError(f"sweep {sweep_id} does not exist; `studio sweeps` lists them")
    return sweep


def list_sweeps(limit: int | None = None) -> list[store.Sweep]:
    return db.call(store.list_sweeps, limit=limit, readonly=True)


def trial_views(sweep: store.Sweep) -> list[TrialView]:
    pairs = db.call(store.trials_with_runs, sweep_id=sweep.id, readonly=True)
    values = db.call(
        store.best_values,
        run_ids=[r.id for _, r in pairs if r is not None],
        name=sweep.objective,
        highest=sweep.direction == "maximize",
        readonly=True,
    )
    views = []
    for trial, run in pairs:
        state = (REFUSED if trial.error else DELETED) if run is None else str(run.status)
        views.append(
            TrialView(
                number=trial.number,
                run_id=trial.run_id,
                params=dict(trial.params),
                value=values.get(run.id) if run is not None else None,
                state=state,
                steps=run.step if run is not None else 0,
                error=trial.error or (run.error if run is not None else None),
            )
        )
    return views


def best_trial(sweep: store.Sweep, trials: list[TrialView]) -> TrialView | None:
    """The completed trial with the best value (the lowest number on a tie)."""
    done = [t for t in trials if t.state == RunStatus.COMPLETED and t.value is not None]
    if not done:
        return None
    sign = -1.0 if sweep.direction == "maximize" else 1.0
    return min(done, key=lambda t: (sign * t.value, t.number))


def best_so_far(sweep: store.Sweep, trials: list[TrialView]) -> list[tuple[int, float]]:
    """(trial number, best completed value up to it) for each completed trial, in order."""
    points: list[tuple[int, float]] = []
    best: float | None = None
    for trial in sorted(trials, key=lambda t: t.number):
        if trial.state != RunStatus.COMPLETED or trial.value is None:
            continue
        if best is None or (
            trial.value > best if sweep.direction == "maximize" else trial.value < best
        ):
            best = trial.value
        points.append((trial.number, best))
    return points


def sweep_status(sweep_id: int, *, refresh: bool = True) -> dict[str, Any]:
    """The `studio sweep-status --json` document; `refresh` first tells the study about ended
    trials and closes a spent sweep (idempotent)."""
    from core.sweeps.queue import reconcile

    if refresh:
        get_sweep(sweep_id)
        reconcile(sweep_id)
    sweep = get_sweep(sweep_id)
    trials = trial_views(sweep)
    best = best_trial(sweep, trials)
    return {
        "sweep_id": sweep.id,
        "name": sweep.name,
        "status": sweep.status,
        "dataset": sweep.dataset,
        "objective": sweep.objective,
        "direction": sweep.direction,
        "sampler": sweep.sampler,
        "pruner": sweep.pruner,
        "budget": {"trials": sweep.max_trials, "time_s": sweep.timeout_s},
        "trials": [t.to_json() for t in trials],
        "best": None
        if best is None
        else {
            "number": best.number,
            "run_id": best.run_id,
            "params": best.params,
            "value": best.value,
        },
        "error": sweep.error,
    }
