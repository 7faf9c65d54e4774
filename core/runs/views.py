"""Plain snapshots of runs, metrics, checkpoints, saved specs and workers, as the UI and the
CLI see them (detached from the database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from core.states import ACTIVE, RunStatus
from core.store.models import Run, Spec

# kept for callers of the service; the statuses themselves live in core.states
RUN_STATUSES = tuple(RunStatus)
ACTIVE_STATUSES = tuple(s for s in RunStatus if s in ACTIVE)


@dataclass(frozen=True)
class RunView:
    """One run as the UI and the CLI see it (a plain snapshot, detached from the database)."""

    id: int
    status: RunStatus
    spec_name: str | None
    spec: dict
    dataset: str
    settings: dict  # TrainConfig.to_dict()
    requested_action: str | None  # a RunRequest (stop | pause) a worker has not obeyed yet
    error: str | None
    device: str | None
    worker_id: str | None
    created: datetime
    started: datetime | None
    finished: datetime | None
    heartbeat: datetime | None
    epoch: int
    step: int
    total_steps: int | None
    attempts: int  # how many times a worker claimed it; a change means metrics were rewound
    result: dict = field(default_factory=dict)  # final metrics + confusion_matrix, FitResult info
    parent_run_id: int | None = None  # the run it started from (fine-tune, compression, init)
    origin: dict | None = None  # how it came to be: {"kind": "init-from" | "compress" | ...}

    @property
    def progress(self) -> float:
        """Fraction of steps done, 0..1 (0 when the total is not known yet)."""
        if not self.total_steps:
            return 1.0 if self.status == RunStatus.COMPLETED else 0.0
        return min(1.0, self.step / self.total_steps)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def confusion_matrix(self) -> list[list[int]] | None:
        return self.result.get("confusion_matrix")


@dataclass(frozen=True)
class MetricRow:
    """One recorded metric value; `id` grows monotonically, for incremental polling."""

    id: int
    name: str
    step: int
    epoch: int
    value: float
    time: datetime


@dataclass(frozen=True)
class MetricSeries:
    """One metric downsampled for a chart by core.runs.curves' rule (min and max per bucket)."""

    name: str
    steps: list[int]
    epochs: list[int]
    values: list[float]
    total: int  # points recorded before downsampling
    last_id: int  # highest metric id seen, to poll with metrics_since(after_id=last_id)
    last_step: int = 0  # the curve's last recorded step (the rule may not keep that point)


@dataclass(frozen=True)
class CheckpointView:
    id: int
    run_id: int
    epoch: int
    step: int
    path: str
    metrics: dict
    created: datetime


@dataclass(frozen=True)
class SpecView:
    id: int
    name: str
    version: int
    spec: dict
    created: datetime


@dataclass(frozen=True)
class WorkerView:
    id: str
    host: str
    pid: int
    device: str | None
    status: str  # a core.states.WorkerStatus
    started: datetime
    heartbeat: datetime
    alive: bool  # heartbeat fresher than settings.stale_after_s
    run_id: int | None  # the run it is training now


def _run_view(row: Run) -> RunView:
    return RunView(
        id=row.id,
        status=RunStatus(row.status),
        spec_name=row.spec_name,
        spec=row.spec,
        dataset=row.dataset,
        settings=row.settings,
        requested_action=row.requested_action,
        error=row.error,
        device=row.device,
        worker_id=row.worker_id,
        created=row.created,
        started=row.started,
        finished=row.finished,
        heartbeat=row.heartbeat,
        epoch=row.epoch,
        step=row.step,
        total_steps=row.total_steps,
        attempts=row.attempts,
        result=row.result or {},
        parent_run_id=row.parent_run_id,
        origin=row.origin,
    )


def _spec_view(row: Spec) -> SpecView:
    return SpecView(row.id, row.name, row.version, row.spec, row.created)
