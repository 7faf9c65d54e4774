"""Steering runs from any process: stop, pause, resume, delete."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any

from core.config import get_settings
from core.errors import NotFoundError, TrainingError
from core.runs.reading import _in_session, get_run
from core.runs.views import RunView
from core.store import db
from core.store import repository as repo
from core.store.models import utcnow

if TYPE_CHECKING:
    pass


def _refuse(run: RunView, verb: str, allowed: str) -> TrainingError:
    return TrainingError(f"run {run.id} is {run.status}; only {allowed} runs can be {verb}")


def request_stop(run_id: int) -> RunView:
    """Stop a queued, running or paused run (a running one stops between steps)."""
    run = get_run(run_id)
    now = utcnow()
    cancelled = {"status": "cancelled", "requested_action": None, "finished": now}
    if db.call(
        repo.transition_run, run_id=run.id, from_statuses=("queued", "paused"), values=cancelled
    ) or db.call(
        repo.transition_run,
        run_id=run.id,
        from_statuses=("running",),
        values={"requested_action": "stop"},
    ):
        return get_run(run_id)
    raise _refuse(get_run(run_id), "stopped", "queued, running or paused")


def request_pause(run_id: int) -> RunView:
    """Pause a queued or running run (a running one checkpoints, then pauses)."""
    run = get_run(run_id)
    if db.call(
        repo.transition_run,
        run_id=run.id,
        from_statuses=("queued",),
        values={"status": "paused", "requested_action": None},
    ) or db.call(
        repo.transition_run,
        run_id=run.id,
        from_statuses=("running",),
        values={"requested_action": "pause"},
    ):
        return get_run(run_id)
    raise _refuse(get_run(run_id), "paused", "queued or running")


def request_resume(run_id: int) -> RunView:
    """Queue a paused run again (a worker resumes it from its latest checkpoint), or withdraw
    a pause request that a running run has not obeyed yet."""
    run = get_run(run_id)
    if db.call(
        repo.transition_run,
        run_id=run.id,
        from_statuses=("paused",),
        values={"status": "queued", "requested_action": None, "worker_id": None},
    ):
        return get_run(run_id)
    current = get_run(run_id)
    if current.status == "running" and current.requested_action == "pause":
        db.call(
            repo.transition_run,
            run_id=run.id,
            from_statuses=("running",),
            values={"requested_action": None},
        )
        return get_run(run_id)
    raise TrainingError(
        f"run {run.id} is {current.status}; only paused runs can be resumed"
        + (" (it is already running)" if current.status == "running" else "")
    )


def delete_run(run_id: int) -> None:
    """Delete a run, its metrics, checkpoints and checkpoint files; refused while running."""

    def delete(session: Any) -> str | None:
        row = repo.get_run(session=session, run_id=int(run_id))
        if row is None:
            raise NotFoundError(f"run {run_id} does not exist")
        if row.status == "running":
            return row.status
        repo.delete_run(session=session, run_id=row.id)
        return None

    refused = db.call(_in_session(delete))
    if refused:
        raise TrainingError(
            f"run {run_id} is running; stop it first (`studio stop {run_id}`) and delete it "
            "once it is cancelled"
        )
    shutil.rmtree(get_settings().checkpoints_dir / str(int(run_id)), ignore_errors=True)
