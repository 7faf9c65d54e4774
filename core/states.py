"""Run and worker states, and the requests that move a run between them, written once.

Every status the studio stores, compares or prints comes from here: the store, the worker, the
training loop, the run service, the pages and the CLI. The enums are `StrEnum`s, so a member
equals the plain string kept in the database and printed in `studio status --json`
(`RunStatus.CANCELLED == "cancelled"`): the contract stays the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"  # waiting for a worker to claim it
    RUNNING = "running"  # a worker (or a foreground `studio train`) is training it
    PAUSED = "paused"  # checkpointed; a resume queues it again
    COMPLETED = "completed"  # trained to its length (or stopped early by patience)
    FAILED = "failed"  # an error ended it; RunView.error says which
    CANCELLED = "cancelled"  # a person stopped it
    PRUNED = "pruned"  # a sweep's pruner stopped it early as unpromising (curves kept)

    @property
    def is_active(self) -> bool:
        return self in ACTIVE

    @property
    def is_finished(self) -> bool:
        return self in FINISHED


ACTIVE = frozenset({RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED})
FINISHED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PRUNED})


class SweepStatus(StrEnum):
    """Where a sweep (core.sweeps) is: it queues trials while `running`."""

    RUNNING = "running"  # trials are queued as workers free up, until the budget is spent
    COMPLETED = "completed"  # its budget is spent and every trial has ended
    STOPPED = "stopped"  # a person stopped it; no more trials are queued


class RunRequest(StrEnum):
    """What a person asks of a run; a running one records it as `requested_action` and its
    worker obeys between two steps."""

    STOP = "stop"
    PAUSE = "pause"
    RESUME = "resume"


class WorkerStatus(StrEnum):
    """What a worker process is doing, as its heartbeat row says."""

    IDLE = "idle"  # a `studio worker` waiting for a queued run
    BUSY = "busy"  # a `studio worker` training a run
    FOREGROUND = "foreground"  # a `studio train` process training its own run
    STOPPED = "stopped"  # exited cleanly
    LOST = "lost"  # its heartbeat went stale


SERVING = frozenset({WorkerStatus.IDLE, WorkerStatus.BUSY})  # takes queued runs


@dataclass(frozen=True)
class Transition:
    """One request applied to a run: runs in `from_statuses` move at once to `to` (None: the
    status stays) with `requested_action` set to `requested` and, where `clear_worker`, no
    worker any more. `finishes` stamps the run's finish time."""

    from_statuses: frozenset[RunStatus]
    to: RunStatus | None
    requested: RunRequest | None = None
    clear_worker: bool = False
    finishes: bool = False
    only_if_requested: RunRequest | None = None  # applies only while this request is pending


# The allowed transitions, tried in order: the first whose `from_statuses` holds the run wins.
# A running run is never moved here: its worker is asked (requested_action) and obeys.
TRANSITIONS: dict[RunRequest, tuple[Transition, ...]] = {
    RunRequest.STOP: (
        Transition(
            frozenset({RunStatus.QUEUED, RunStatus.PAUSED}), RunStatus.CANCELLED, finishes=True
        ),
        Transition(frozenset({RunStatus.RUNNING}), None, requested=RunRequest.STOP),
    ),
    RunRequest.PAUSE: (
        Transition(frozenset({RunStatus.QUEUED}), RunStatus.PAUSED),
        Transition(frozenset({RunStatus.RUNNING}), None, requested=RunRequest.PAUSE),
    ),
    RunRequest.RESUME: (
        Transition(frozenset({RunStatus.PAUSED}), RunStatus.QUEUED, clear_worker=True),
        # a pause a running run has not obeyed yet is withdrawn
        Transition(frozenset({RunStatus.RUNNING}), None, only_if_requested=RunRequest.PAUSE),
    ),
}


def allowed_from(request: RunRequest) -> list[RunStatus]:
    """The statuses from which `request` always applies, in lifecycle order (what a refusal
    names as allowed)."""
    statuses = {s for t in TRANSITIONS[request] if not t.only_if_requested for s in t.from_statuses}
    return [s for s in RunStatus if s in statuses]


def can_request(request: RunRequest, status: str, requested_action: str | None = None) -> bool:
    """Whether `request` would change a run now in `status` (what a page greys buttons by)."""
    for transition in TRANSITIONS[request]:
        if status in transition.from_statuses:
            if transition.only_if_requested is not None:
                return requested_action == transition.only_if_requested
            return transition.requested is None or requested_action != transition.requested
    return False


def obeyed_status(requested_action: str | None) -> RunStatus:
    """The status a run ends in when its worker goes away with `requested_action` pending (a
    stale worker's run: stop -> cancelled, pause -> paused, nothing -> queued again)."""
    return {RunRequest.STOP: RunStatus.CANCELLED, RunRequest.PAUSE: RunStatus.PAUSED}.get(
        requested_action or "", RunStatus.QUEUED
    )


def finished_status(outcome: str, released_to: RunStatus | None = None) -> RunStatus:
    """The status a worker closes a run with after the loop returned `outcome` (a RunStatus):
    completed, failed and cancelled stand; a pause stands too, unless a signal interrupted the
    worker, which then releases the run to `released_to` (queued for another worker)."""
    status = RunStatus(outcome)
    if status in FINISHED or released_to is None:
        return status
    return released_to
