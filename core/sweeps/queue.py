"""Who asks Optuna for the next trial: the workers, when they fall idle. No extra daemon.

A worker that finds the run queue empty calls `advance_sweeps`: for each running sweep it
first tells the study how the finished trials went (`reconcile`), then, holding the sweep's
lease (a claim on its row that expires, so a dead holder blocks nobody for long), asks the
study for trials and queues their runs until as many trials are queued or training as there
are live workers, or the budget (trials, time) is spent. Creating a sweep does the same once,
so its first trials are waiting before any worker looks.

Everything lives in the database, so a sweep survives a restart of every process:
- a trial asked from Optuna whose run was not written yet (its asker died in between) gets its
  run on the next advance, with the parameters Optuna recorded: one trial, one run;
- a trial whose worker dies is an ordinary run: it is re-queued and resumed from its
  checkpoint by the next worker, and its Optuna trial stays open until the run ends, so it is
  counted once;
- `reconcile` is idempotent (telling a finished trial is skipped), so any process may run it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import timedelta
from typing import Any

from core.config import get_settings
from core.errors import StudioError
from core.states import RunStatus, SweepStatus
from core.store import db
from core.store import repository as repo
from core.store import sweeps as store
from core.store.models import utcnow
from core.sweeps import study as studies
from core.sweeps.params import Param

log = logging.getLogger("studio.sweeps")

LEASE_S = 60.0  # a sweep's claim lasts this long unless released: a crashed holder's expires
IN_FLIGHT = (RunStatus.QUEUED, RunStatus.RUNNING)  # trials that hold a worker (or wait for one)
IDLE_CHECK_S = 1.0  # an idle worker looks at the sweeps at most this often


def advance_sweeps(owner: str) -> int:
    """Reconcile every running sweep and queue the trials free workers can take; returns how
    many runs were queued. Never raises: a sweep that cannot advance now is logged and tried
    again on the next call."""
    queued = 0
    try:
        sweep_ids = db.call(store.running_sweep_ids, readonly=True)
    except Exception as error:  # the worker must survive whatever a sweep does
        log.warning("could not list the sweeps: %s", error)
        return 0
    for sweep_id in sweep_ids:
        try:
            queued += advance(sweep_id, owner=owner)
        except Exception as error:
            log.warning("sweep %d could not queue trials now: %s", sweep_id, error)
    return queued


class IdleSweeps:
    """What an idle worker calls each time it finds the queue empty: `advance_sweeps`, at most
    every IDLE_CHECK_S while there is nothing to queue (a worker polls the queue far more often
    than sweeps change), at once after a call that queued trials (the sweep goes on)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.checked_at = float("-inf")
        self.queued = 0

    def __call__(self) -> int:
        now = time.monotonic()
        if not self.queued and now - self.checked_at < IDLE_CHECK_S:
            return 0
        self.checked_at = now
        self.queued = advance_sweeps(self.owner)
        return self.queued


def advance(sweep_id: int, *, owner: str) -> int:
    """Reconcile one sweep, then queue its next trials under its lease; returns how many."""
    reconcile(sweep_id)
    until = utcnow() + timedelta(seconds=LEASE_S)
    if not db.call(store.claim_sweep, sweep_id=sweep_id, owner=owner, until=until):
        return 0  # another process is queueing this sweep's trials right now
    try:
        return _queue_trials(sweep_id)
    finally:
        db.call(store.release_sweep, sweep_id=sweep_id, owner=owner)


def live_workers() -> int:
    """Workers whose heartbeat is fresh: how many trials a sweep trains at once (at least 1)."""
    fresh_after = utcnow() - timedelta(seconds=get_settings().stale_after_s)
    return max(1, db.call(repo.fresh_worker_count, fresh_after=fresh_after, readonly=True))


def budget_left(sweep: store.Sweep, created: int) -> int:
    """Trials that may still be queued: the trial budget minus those created, none once the
    time limit has passed (running trials finish; no new one starts)."""
    elapsed = (utcnow() - sweep.created).total_seconds()
    if sweep.timeout_s is not None and elapsed >= sweep.timeout_s:
        return 0
    if sweep.max_trials is None:
        return 1_000_000  # only the time limit bounds it
    return max(0, sweep.max_trials - created)


def _queue_trials(sweep_id: int) -> int:
    import optuna
    from optuna.trial import TrialState

    from core.data import describe_dataset

    sweep = db.call(store.get_sweep, sweep_id=sweep_id, readonly=True)
    if sweep is None or sweep.status != SweepStatus.RUNNING:
        return 0
    known = {trial.number for trial, _ in db.call(store.trials_with_runs, sweep_id=sweep_id)}
    study = studies.load(sweep, trials_so_far=len(known))
    info = describe_dataset(sweep.dataset)
    queued = 0
    # asked, but the asker died before writing its run: write it now, with Optuna's params
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if frozen.number not in known:
            queued += _add_trial(sweep, study, frozen.number, frozen._trial_id, frozen.params, info)
            known.add(frozen.number)
    active = db.call(store.count_active_trials, sweep_id=sweep_id, statuses=IN_FLIGHT)
    wanted = min(live_workers() - active, budget_left(sweep, len(known)))
    space = {p["name"]: Param.from_dict(p).distribution() for p in sweep.space}
    for _ in range(max(0, wanted)):
        trial: optuna.Trial = study.ask(space)
        queued += _add_trial(sweep, study, trial.number, trial._trial_id, trial.params, info)
        known.add(trial.number)
    return queued


def _add_trial(
    sweep: store.Sweep,
    study: Any,
    number: int,
    trial_id: int,
    params: dict[str, Any],
    info: Any,
) -> int:
    """Write trial `number`'s run (1), or refuse the trial when its combination of parameters
    does not make a valid run (0: recorded with the reason, told to Optuna as failed)."""
    from optuna.trial import TrialState

    from core.sweeps.space import apply_params

    try:
        spec, settings = apply_params(sweep.spec, sweep.settings, params, info)
    except StudioError as error:
        db.call(
            store.add_trial,
            sweep_id=sweep.id,
            number=number,
            study_trial_id=trial_id,
            params=params,
            run=None,
            error=str(error),
        )
        tell(study, number, TrialState.FAIL)
        log.info("sweep %d trial %d refused: %s", sweep.id, number, error)
        return 0
    origin = {"kind": "sweep", "sweep_id": sweep.id, "trial": number, "params": params}
    db.call(
        store.add_trial,
        sweep_id=sweep.id,
        number=number,
        study_trial_id=trial_id,
        params=params,
        run={
            "spec": spec,
            "dataset": sweep.dataset,
            "settings": settings,
            "spec_name": sweep.spec_name,
            "origin": origin,
        },
    )
    return 1


def reconcile(sweep_id: int) -> None:
    """Tell the study how each ended trial went (its run's best objective value; pruned;
    failed), and close the sweep once its budget is spent and no trial is left to finish."""
    from optuna.trial import TrialState

    sweep = db.call(store.get_sweep, sweep_id=sweep_id, readonly=True)
    if sweep is None or sweep.status != SweepStatus.RUNNING:
        return
    pairs = db.call(store.trials_with_runs, sweep_id=sweep_id, readonly=True)
    ended = [(t, r) for t, r in pairs if r is None or RunStatus(r.status).is_finished]
    if ended:
        study = studies.load(sweep)
        open_numbers = {
            t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        todo = [(t, r) for t, r in ended if t.number in open_numbers]
        values = db.call(
            store.best_values,
            run_ids=[r.id for _, r in todo if r is not None],
            name=sweep.objective,
            highest=sweep.direction == "maximize",
            readonly=True,
        )
        for trial, run in todo:
            state, value = TrialState.FAIL, None
            if run is not None and run.status == RunStatus.COMPLETED:
                value = values.get(run.id)
                state = TrialState.COMPLETE if value is not None else TrialState.FAIL
            elif run is not None and run.status == RunStatus.PRUNED:
                state = TrialState.PRUNED
            tell(study, trial.number, state, value)
    # judged on the same snapshot as the tells above: a trial that ended after it was read is
    # told on the next pass, and the sweep closes then, never with a trial left open
    unfinished = any(r is not None and not RunStatus(r.status).is_finished for _, r in pairs)
    spent = budget_left(sweep, len(pairs)) == 0 and not unfinished
    if spent and db.call(store.finish_sweep, sweep_id=sweep_id, status=SweepStatus.COMPLETED):
        log.info("sweep %d completed", sweep_id)


def tell(study: Any, number: int, state: Any, value: float | None = None) -> None:
    """Tell the study how trial `number` ended, unless another process told it first (workers
    and status readers reconcile at once: the first one wins, the others change nothing)."""
    from optuna.exceptions import UpdateFinishedTrialError

    with contextlib.suppress(UpdateFinishedTrialError):  # told between our read and write
        study.tell(number, value, state=state, skip_if_finished=True)


def stop_sweep(sweep_id: int) -> None:
    """Stop a sweep: no more trials; its queued and running trials are stopped (they end
    cancelled, checkpointed) and told to the study as failed."""
    from optuna.trial import TrialState

    from core.runs import request_stop

    sweep = db.call(store.get_sweep, sweep_id=sweep_id, readonly=True)
    if sweep is None:
        from core.errors import NotFoundError

        raise NotFoundError(f"sweep {sweep_id} does not exist; `studio sweeps` lists them")
    db.call(store.finish_sweep, sweep_id=sweep_id, status=SweepStatus.STOPPED)
    for run_id in db.call(
        store.sweep_run_ids, sweep_id=sweep_id, statuses=(*IN_FLIGHT, RunStatus.PAUSED)
    ):
        try:
            request_stop(run_id)
        except StudioError as error:  # it ended meanwhile
            log.info("sweep %d: run %d not stopped: %s", sweep_id, run_id, error)
    study = studies.load(sweep)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        tell(study, frozen.number, TrialState.FAIL)
