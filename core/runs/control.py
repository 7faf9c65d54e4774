"""Steering runs from any process: stop, pause, resume, delete.

What each request may do is written once, in core.states.TRANSITIONS; this module applies it
with race-free conditional updates (a run that changed under us is not overwritten)."""

from __future__ import annotations

from typing import Any

from core import artifacts
from core.errors import NotFoundError, TrainingError
from core.runs.reading import _in_session, get_run
from core.runs.views import RunView
from core.states import TRANSITIONS, RunRequest, RunStatus, Transition, allowed_from
from core.store import db
from core.store import repository as repo
from core.store.models import utcnow

_PAST = {RunRequest.STOP: "stopped", RunRequest.PAUSE: "paused", RunRequest.RESUME: "resumed"}


def apply_request(run_id: int, request: RunRequest | str) -> RunView:
    """Apply `request` to a run by the first transition of TRANSITIONS[request] its status
    allows; TrainingError naming the run's status and the allowed ones when none does."""
    request = RunRequest(request)
    run = get_run(run_id)
    for transition in TRANSITIONS[request]:
        if db.call(
            repo.transition_run,
            run_id=run.id,
            from_statuses=tuple(transition.from_statuses),
            values=_values(transition),
            requested_action=transition.only_if_requested,
        ):
            return get_run(run_id)
    current = get_run(run_id)
    hint = ""
    if any(current.status in t.from_statuses for t in TRANSITIONS[request] if t.only_if_requested):
        hint = f" (it is already {current.status})"
    raise TrainingError(
        f"run {current.id} is {current.status}; only {_either(allowed_from(request))} runs can be "
        f"{_PAST[request]}{hint}"
    )


def _values(transition: Transition) -> dict[str, Any]:
    values: dict[str, Any] = {"requested_action": transition.requested}
    if transition.to is not None:
        values["status"] = transition.to
    if transition.clear_worker:
        values["worker_id"] = None
    if transition.finishes:
        values["finished"] = utcnow()
    return values


def _either(statuses: list[RunStatus]) -> str:
    """[queued, running, paused] -> "queued, running or paused"."""
    words = [str(s) for s in statuses]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def request_stop(run_id: int) -> RunView:
    """Stop a queued, running or paused run (a running one stops between steps)."""
    return apply_request(run_id, RunRequest.STOP)


def request_pause(run_id: int) -> RunView:
    """Pause a queued or running run (a running one checkpoints, then pauses)."""
    return apply_request(run_id, RunRequest.PAUSE)


def request_resume(run_id: int) -> RunView:
    """Queue a paused run again (a worker resumes it from its latest checkpoint), or withdraw
    a pause request that a running run has not obeyed yet."""
    return apply_request(run_id, RunRequest.RESUME)


def request_restart(run_id: int) -> RunView:
    """Queue a paused, failed or cancelled run again from step 0, discarding its metrics and
    checkpoints: the person's explicit choice when its checkpoints cannot be read."""
    restartable = (RunStatus.PAUSED, RunStatus.FAILED, RunStatus.CANCELLED)
    run = get_run(run_id)
    paths = db.call(repo.restart_run, run_id=run.id, from_statuses=restartable)
    if paths is None:
        current = get_run(run_id)
        raise TrainingError(
            f"run {current.id} is {current.status}; only {_either(list(restartable))} runs can "
            "be restarted"
        )
    for path in paths:
        artifacts.remove(path)
    return get_run(run_id)


def delete_run(run_id: int) -> None:
    """Delete a run, its metrics, checkpoints and checkpoint files; refused while running."""

    def delete(session: Any) -> str | None:
        row = repo.get_run(session=session, run_id=int(run_id))
        if row is None:
            raise NotFoundError(f"run {run_id} does not exist")
        if row.status == RunStatus.RUNNING:
            return row.status
        repo.delete_run(session=session, run_id=row.id)
        return None

    refused = db.call(_in_session(delete))
    if refused:
        raise TrainingError(
            f"run {run_id} is running; stop it first (`studio stop {run_id}`) and delete it "
            "once it is cancelled"
        )
    artifacts.remove_tree("checkpoints", str(int(run_id)))
