"""The run service: what the UI and the CLI call to queue, watch, steer and clean up training.

Everything here is headless (no Streamlit) and goes through the store; training itself happens
in core.worker (a `studio worker` process, or in-process for `studio train`).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from core.config import get_settings
from core.errors import NotFoundError, SettingsError, TrainingError
from core.store import db
from core.store import repository as repo
from core.store.models import Run, Spec, utcnow

if TYPE_CHECKING:
    from torch import nn

    from core.data import Dataset
    from core.train.config import TrainConfig

RUN_STATUSES = ("queued", "running", "paused", "completed", "failed", "cancelled")
ACTIVE_STATUSES = ("queued", "running", "paused")

# progress(step, total_steps, latest_metrics) — called from the training thread, throttled by
# the caller (the CLI's ProgressBar redraws at most every 0.2 s).
ProgressFn = Callable[[int, int, dict[str, float]], None]
T = TypeVar("T")
# the keys `studio train --json` always carries under "metrics" (null when not recorded)
TRAIN_JSON_METRICS = ("train_loss", "val_loss", "val_accuracy", "test_accuracy")


@dataclass(frozen=True)
class RunView:
    """One run as the UI and the CLI see it (a plain snapshot, detached from the database)."""

    id: int
    status: str  # queued | running | paused | completed | failed | cancelled
    spec_name: str | None
    spec: dict
    dataset: str
    settings: dict  # TrainConfig.to_dict()
    requested_action: str | None  # "stop" | "pause" while a worker has not yet obeyed
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

    @property
    def progress(self) -> float:
        """Fraction of steps done, 0..1 (0 when the total is not known yet)."""
        if not self.total_steps:
            return 1.0 if self.status == "completed" else 0.0
        return min(1.0, self.step / self.total_steps)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

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
    """One metric downsampled for a chart: at most `max_points` points, first and last kept."""

    name: str
    steps: list[int]
    epochs: list[int]
    values: list[float]
    total: int  # points recorded before downsampling
    last_id: int  # highest metric id seen, to poll with metrics_since(after_id=last_id)


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
    status: str  # idle | busy | stopped
    started: datetime
    heartbeat: datetime
    alive: bool  # heartbeat fresher than settings.stale_after_s
    run_id: int | None  # the run it is training now


def _config(config: TrainConfig | dict | None) -> TrainConfig:
    from core.train import TrainConfig

    if config is None:
        return TrainConfig()
    if isinstance(config, TrainConfig):
        return config
    return TrainConfig.from_dict(dict(config))


def _check_spec(spec: dict, data: Any) -> None:
    """Trace the spec against the dataset's shapes; the builder's SpecError when it fails."""
    from core.builder import trace
    from core.worker import model_facts

    result = trace(spec, **model_facts(data), finished=True)
    if not result.ok:
        raise result.error


def _spec_name(spec: dict, spec_name: str | None) -> str | None:
    name = spec_name or (spec.get("name") if isinstance(spec, dict) else None)
    return str(name) if name else None


def submit_run(
    *,
    spec: dict,
    dataset: str,
    config: TrainConfig | dict | None = None,
    spec_name: str | None = None,
) -> int:
    """Validate settings and spec against the dataset, then queue the run; nothing is queued on
    error (SettingsError, SpecError, DataError)."""
    from core.data import describe_dataset

    settings = _config(config)
    info = describe_dataset(dataset)
    settings.validate(train_size=info.sizes.get("train"), task=info.task, check_device=False)
    _check_device_somewhere(settings.device)
    _check_spec(spec, info)
    run = db.call(
        repo.create_run,
        spec=spec,
        dataset=dataset,
        settings=settings.to_dict(),
        spec_name=_spec_name(spec, spec_name),
    )
    return run.id


def _check_device_somewhere(device: str) -> None:
    """A queued run may ask for a device that this machine lacks when a live worker has it
    (workers on GPU machines share the database); otherwise it is refused before queueing."""
    from core.train.devices import resolve_device

    try:
        resolve_device(device)
    except SettingsError as error:
        workers = [w.device for w in list_workers() if w.device]
        if any(
            label == device or label.startswith(f"{device}:") or label.startswith(f"{device} ")
            for label in workers
        ):
            return
        seen = "; live workers have: " + ", ".join(workers) if workers else "; no worker is alive"
        raise SettingsError(f"{error}{seen}") from None


def train_run_foreground(
    *,
    spec: dict,
    dataset: str,
    config: TrainConfig | dict | None = None,
    spec_name: str | None = None,
    progress: ProgressFn | None = None,
    interrupted: threading.Event | None = None,
) -> dict:
    """Record a run and train it in this process through the worker's own code; returns the
    `studio train --json` result dict. Setting `interrupted` pauses the run at the next step
    (checkpointed; `request_resume` hands it to a worker)."""
    from core import worker
    from core.data import load_dataset

    settings = _config(config)
    data = load_dataset(dataset)
    settings.validate(train_size=len(data.train), task=data.task)
    _check_spec(spec, data)
    worker_id = worker.new_worker_id("foreground")
    db.call(
        repo.register_worker,
        worker_id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        device=None,
        status="foreground",
    )
    try:
        run = db.call(
            repo.create_run,
            spec=spec,
            dataset=dataset,
            settings=settings.to_dict(),
            spec_name=_spec_name(spec, spec_name),
            status="running",
            worker_id=worker_id,
        )
        with worker.Heartbeat(worker_id, interval_s=get_settings().heartbeat_s):
            worker.execute_run(
                run.id,
                worker_id=worker_id,
                interrupted=interrupted,
                progress=progress,
                dataset=data,
                release_status="paused",
            )
    finally:
        db.call(repo.set_worker_status, worker_id=worker_id, status="stopped")
    return run_result(get_run(run.id))


def run_result(run: RunView) -> dict[str, Any]:
    """The `studio train --json` shape for a run (final metrics once it has finished)."""
    result = run.result or {}
    metrics = dict(result.get("metrics") or {})
    for name in TRAIN_JSON_METRICS:
        metrics.setdefault(name, None)
    return {
        "run_id": run.id,
        "status": run.status,
        "epochs": result.get("epochs", run.epoch),
        "steps": result.get("steps", run.step),
        "duration_s": result.get("duration_s"),
        "samples_per_s": result.get("samples_per_s"),
        "metrics": metrics,
        "error": run.error,
        "device": run.device,
        "confusion_matrix": result.get("confusion_matrix"),
    }


# --- reading runs and metrics ------------------------------------------------------------------


def _run_view(row: Run) -> RunView:
    return RunView(
        id=row.id,
        status=row.status,
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
    )


def list_runs(
    *, status: str | Sequence[str] | None = None, limit: int | None = None
) -> list[RunView]:
    """Runs, newest first (optionally only some statuses)."""
    statuses = [status] if isinstance(status, str) else status
    rows = db.call(repo.list_runs, statuses=statuses, limit=limit, readonly=True)
    return [_run_view(row) for row in rows]


def get_run(run_id: int) -> RunView:
    """One run; NotFoundError when there is none with that id."""
    row = db.call(repo.get_run, run_id=int(run_id), readonly=True)
    if row is None:
        raise NotFoundError(f"run {run_id} does not exist; `studio runs` lists the runs there are")
    return _run_view(row)


def latest_metrics(run_id: int) -> dict[str, float]:
    """The last recorded value of each metric name."""
    return db.call(repo.latest_metrics, run_id=int(run_id), readonly=True)


def metrics_since(
    run_id: int,
    *,
    after_id: int = 0,
    names: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[MetricRow]:
    """Metric rows with id > after_id, oldest first (incremental polling for live curves).

    When a run resumes from a checkpoint, rows past it are deleted and `RunView.attempts` grows:
    a poller that sees a new attempt count should start again from after_id=0."""
    rows = db.call(
        repo.metrics_since,
        run_id=int(run_id),
        after_id=after_id,
        names=list(names) if names else None,
        limit=limit,
        readonly=True,
    )
    return [MetricRow(r.id, r.name, r.step, r.epoch, r.value, r.time) for r in rows]


def metrics_series(run_id: int, name: str, *, max_points: int = 1000) -> MetricSeries:
    """One metric's curve with at most max_points points: when there are more, the database
    returns the first point of each of max_points equal step ranges (index seeks, not a scan)."""
    if max_points < 2:
        raise ValueError(f"max_points={max_points} is too small; ask for at least 2")

    def read(session: Any) -> MetricSeries:
        count, first, last, last_id = repo.metric_summary(session=session, run_id=run_id, name=name)
        buckets = max_points if count > max_points else None
        points = repo.metric_points(
            session=session, run_id=run_id, name=name, buckets=buckets, step_range=(first, last)
        )
        return MetricSeries(
            name=name,
            steps=[p[0] for p in points],
            epochs=[p[1] for p in points],
            values=[p[2] for p in points],
            total=count,
            last_id=last_id,
        )

    return db.call(_in_session(read), readonly=True)


def _in_session(fn: Callable[[Any], T]) -> Callable[..., T]:
    """Adapt fn(session) to db.call's keyword convention (several repository calls, one
    transaction)."""

    def call(*, session: Any) -> T:
        return fn(session)

    return call


def list_checkpoints(run_id: int) -> list[CheckpointView]:
    """A run's checkpoints, oldest first."""
    rows = db.call(repo.list_checkpoints, run_id=int(run_id), readonly=True)
    return [
        CheckpointView(r.id, r.run_id, r.epoch, r.step, r.path, r.metrics, r.created) for r in rows
    ]


# --- steering runs ------------------------------------------------------------------------------


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


def load_run_model(run_id: int, *, which: str = "latest") -> tuple[nn.Module, Dataset, RunView]:
    """Rebuild a run's model from its latest (or "best" validation loss) checkpoint, loaded
    with weights_only=True; the model is in eval mode on the CPU."""
    from core.builder import build_model
    from core.data import load_dataset
    from core.train.checkpoint import load_checkpoint
    from core.worker import model_facts

    if which not in ("latest", "best"):
        raise ValueError(f"which={which!r}; use 'latest' or 'best'")
    run = get_run(run_id)
    checkpoints = list_checkpoints(run.id)
    if not checkpoints:
        raise NotFoundError(
            f"run {run.id} ({run.status}) has no checkpoint yet; one is written at each epoch end"
        )
    chosen = checkpoints[-1]
    if which == "best":
        scored = [c for c in checkpoints if c.metrics.get("val_loss") is not None]
        chosen = min(scored, key=lambda c: c.metrics["val_loss"]) if scored else chosen
    data = load_dataset(run.dataset)
    model = build_model(run.spec, **model_facts(data))
    state = load_checkpoint(chosen.path)
    model.load_state_dict(state["model"])
    model.eval()
    return model, data, run


# --- saved specs -------------------------------------------------------------------------------


def _spec_view(row: Spec) -> SpecView:
    return SpecView(row.id, row.name, row.version, row.spec, row.created)


def save_spec(*, name: str, spec: dict) -> SpecView:
    """Save a named spec; saving an existing name adds version n+1."""
    name = (name or "").strip()
    if not name:
        raise TrainingError("a saved spec needs a name; give it one such as 'my-cnn'")
    return _spec_view(db.call(repo.save_spec, name=name, spec=spec))


def list_specs(*, all_versions: bool = False) -> list[SpecView]:
    """Saved specs: the latest version of each name (every version with all_versions=True)."""
    rows = db.call(repo.list_specs, all_versions=all_versions, readonly=True)
    return [_spec_view(row) for row in rows]


def get_spec(name: str, *, version: int | None = None) -> SpecView:
    """A saved spec by name, latest version unless `version` is given; NotFoundError if absent."""
    row = db.call(repo.get_spec, name=name, version=version, readonly=True)
    if row is None:
        which = f"version {version} of " if version is not None else ""
        raise NotFoundError(f"there is no saved spec {which}{name!r}")
    return _spec_view(row)


# --- workers -----------------------------------------------------------------------------------


def list_workers(*, include_dead: bool = False) -> list[WorkerView]:
    """Workers with their device and whether their heartbeat is fresh."""
    cutoff = utcnow() - timedelta(seconds=get_settings().stale_after_s)
    views = []
    for row, run_id in db.call(repo.list_workers, readonly=True):
        alive = row.heartbeat >= cutoff and row.status not in ("stopped", "lost")
        if alive or include_dead:
            views.append(
                WorkerView(
                    row.id,
                    row.host,
                    row.pid,
                    row.device,
                    row.status,
                    row.started,
                    row.heartbeat,
                    alive,
                    run_id,
                )
            )
    return views


def ensure_local_worker() -> bool:
    """Spawn a detached `studio worker` unless a worker heartbeat is fresh; True if spawned.

    A marker file stops a burst of callers (Streamlit reruns) from spawning several workers
    before the first one has had time to heartbeat."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_s)
    if db.call(repo.fresh_worker_count, fresh_after=cutoff, readonly=True):
        return False
    settings.home.mkdir(parents=True, exist_ok=True)
    marker = settings.home / "worker.spawned"
    with open(settings.home / "worker.spawn.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and time.time() - marker.stat().st_mtime < settings.stale_after_s:
            return False
        log_dir = settings.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "worker.log", "ab") as log_file:
            subprocess.Popen(
                [sys.executable, "-m", "core.cli", "worker"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # survives the UI; a Ctrl-C there does not reach it
                cwd=Path(__file__).resolve().parents[1],
                env=os.environ.copy(),
            )
        marker.touch()
    return True
