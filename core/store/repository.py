"""All SQL of the studio: keyword-only, typed functions taking the session they run in.

Callers own the transaction (core.store.db.call / session_scope); nothing here commits.
Everything is portable SQL (SQLite and PostgreSQL); the one dialect choice is the metric upsert.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_, update
from sqlalchemy.orm import Session

from core.states import FINISHED, SERVING, RunStatus, WorkerStatus, obeyed_status
from core.store.models import Checkpoint, DatasetRecord, Metric, Run, Spec, Worker, utcnow

# --- specs ------------------------------------------------------------------------------------


def save_spec(*, session: Session, name: str, spec: dict[str, Any]) -> Spec:
    """Store `spec` under `name` as version n+1 (1 for a new name)."""
    latest = session.scalar(select(func.max(Spec.version)).where(Spec.name == name)) or 0
    row = Spec(name=name, version=latest + 1, spec=spec, created=utcnow())
    session.add(row)
    session.flush()
    return row


def get_spec(*, session: Session, name: str, version: int | None = None) -> Spec | None:
    query = select(Spec).where(Spec.name == name)
    if version is not None:
        query = query.where(Spec.version == version)
    return session.scalars(query.order_by(Spec.version.desc()).limit(1)).first()


def list_specs(*, session: Session, all_versions: bool = False) -> list[Spec]:
    """Every version, or the latest of each name; by name, newest version first."""
    query = select(Spec)
    if not all_versions:
        latest = (
            select(Spec.name, func.max(Spec.version).label("version"))
            .group_by(Spec.name)
            .subquery()
        )
        query = query.join(
            latest, (Spec.name == latest.c.name) & (Spec.version == latest.c.version)
        )
    return list(session.scalars(query.order_by(Spec.name, Spec.version.desc())))


def delete_spec(*, session: Session, name: str) -> int:
    """Delete every version of `name`; returns how many rows went."""
    return session.execute(delete(Spec).where(Spec.name == name)).rowcount


# --- dataset records (uploads) ---------------------------------------------------------------


def upsert_dataset_record(
    *, session: Session, name: str, kind: str, path: str, options: dict[str, Any] | None = None
) -> DatasetRecord:
    row = session.scalars(select(DatasetRecord).where(DatasetRecord.name == name)).first()
    if row is None:
        row = DatasetRecord(
            name=name, kind=kind, path=path, options=options or {}, created=utcnow()
        )
        session.add(row)
    else:
        row.kind, row.path, row.options = kind, path, options or {}
    session.flush()
    return row


def get_dataset_record(*, session: Session, name: str) -> DatasetRecord | None:
    return session.scalars(select(DatasetRecord).where(DatasetRecord.name == name)).first()


def list_dataset_records(*, session: Session) -> list[DatasetRecord]:
    return list(session.scalars(select(DatasetRecord).order_by(DatasetRecord.name)))


def delete_dataset_record(*, session: Session, name: str) -> bool:
    return session.execute(delete(DatasetRecord).where(DatasetRecord.name == name)).rowcount > 0


# --- runs ------------------------------------------------------------------------------------


def create_run(
    *,
    session: Session,
    spec: dict[str, Any],
    dataset: str,
    settings: dict[str, Any],
    spec_name: str | None = None,
    status: RunStatus = RunStatus.QUEUED,
    worker_id: str | None = None,
    device: str | None = None,
    parent_run_id: int | None = None,
    origin: dict[str, Any] | None = None,
) -> Run:
    """A new run; queued for the workers, or already running for a foreground worker.
    `parent_run_id` and `origin` record the run it started from and how (lineage)."""
    now = utcnow()
    running = status == RunStatus.RUNNING
    row = Run(
        spec=spec,
        spec_name=spec_name,
        dataset=dataset,
        settings=settings,
        status=status,
        worker_id=worker_id,
        device=device,
        attempts=1 if running else 0,
        created=now,
        started=now if running else None,
        heartbeat=now if running else None,
        epoch=0,
        step=0,
        parent_run_id=parent_run_id,
        origin=origin,
    )
    session.add(row)
    session.flush()
    return row


def get_run(*, session: Session, run_id: int) -> Run | None:
    return session.get(Run, run_id)


def list_runs(
    *, session: Session, statuses: Sequence[str] | None = None, limit: int | None = None
) -> list[Run]:
    """Runs, newest first."""
    query = select(Run).order_by(Run.created.desc(), Run.id.desc())
    if statuses:
        query = query.where(Run.status.in_(statuses))
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def child_runs(*, session: Session, run_id: int) -> list[Run]:
    """Runs started from `run_id`, oldest first."""
    query = select(Run).where(Run.parent_run_id == run_id).order_by(Run.id)
    return list(session.scalars(query))


def count_runs(*, session: Session, statuses: Sequence[str] | None = None) -> int:
    query = select(func.count(Run.id))
    if statuses:
        query = query.where(Run.status.in_(statuses))
    return session.scalar(query) or 0


CLAIM_SCAN = 200  # queued runs a worker looks through for one it can train


def claim_next_run(
    *, session: Session, worker_id: str, can_run: Callable[[dict[str, Any]], bool] | None = None
) -> Run | None:
    """Atomically take the oldest queued run for `worker_id`; None when the queue is empty.

    `can_run(settings)` says whether this worker can meet a run's device needs (GPUs, process
    count): runs it cannot train are left for other workers (among the oldest CLAIM_SCAN).
    The status re-check in the outer WHERE makes two claimers race safely: at most one UPDATE
    changes the row (rowcount 1), the other sees rowcount 0. On PostgreSQL the row is taken
    with FOR UPDATE SKIP LOCKED, so concurrent claimers pass over each other's rows instead of
    queueing behind them; SQLite serializes writers (BEGIN IMMEDIATE) and needs no lock."""
    queued = select(Run.id).where(Run.status == RunStatus.QUEUED)
    if can_run is not None:
        candidates = session.execute(
            select(Run.id, Run.settings)
            .where(Run.status == RunStatus.QUEUED)
            .order_by(Run.created, Run.id)
            .limit(CLAIM_SCAN)
        ).all()
        able = [run_id for run_id, settings in candidates if can_run(settings or {})]
        if not able:
            return None
        queued = queued.where(Run.id.in_(able))
    oldest = queued.order_by(Run.created, Run.id).limit(1)
    if session.get_bind().dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    now = utcnow()
    result = session.execute(
        update(Run)
        .where(Run.id == oldest.scalar_subquery(), Run.status == RunStatus.QUEUED)
        .values(
            status=RunStatus.RUNNING,
            worker_id=worker_id,
            attempts=Run.attempts + 1,
            started=func.coalesce(Run.started, now),
            heartbeat=now,
            error=None,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    return session.scalars(
        select(Run)
        .where(Run.worker_id == worker_id, Run.status == RunStatus.RUNNING)
        .order_by(Run.heartbeat.desc(), Run.id.desc())
        .limit(1)
    ).first()


def owns_run(*, session: Session, run_id: int, worker_id: str) -> bool:
    owner = session.scalar(
        select(Run.id).where(
            Run.id == run_id, Run.worker_id == worker_id, Run.status == RunStatus.RUNNING
        )
    )
    return owner is not None


def set_run_started(
    *, session: Session, run_id: int, worker_id: str, device: str, total_steps: int | None = None
) -> bool:
    values: dict[str, Any] = {"device": device}
    if total_steps is not None:
        values["total_steps"] = total_steps
    return _update_owned(session, run_id, worker_id, values)


def set_run_total_steps(
    *, session: Session, run_id: int, worker_id: str, total_steps: int, step: int, epoch: int
) -> bool:
    return _update_owned(
        session, run_id, worker_id, {"total_steps": total_steps, "step": step, "epoch": epoch}
    )


def _update_owned(session: Session, run_id: int, worker_id: str, values: dict[str, Any]) -> bool:
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.worker_id == worker_id, Run.status == RunStatus.RUNNING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def record_metrics(
    *, session: Session, run_id: int, worker_id: str, records: Iterable[Any]
) -> bool:
    """Write a batch of metrics (objects with name, step, epoch, value) and advance the run's
    epoch/step, in the caller's one transaction. False (nothing written) when `worker_id` no
    longer owns the run."""
    rows = [
        {
            "run_id": run_id,
            "name": r.name,
            "step": int(r.step),
            "epoch": int(r.epoch),
            "value": float(r.value),
        }
        for r in records
    ]
    if not rows:
        return owns_run(session=session, run_id=run_id, worker_id=worker_id)
    last = max(rows, key=lambda r: r["step"])
    owned = _update_owned(
        session, run_id, worker_id, {"step": last["step"], "epoch": last["epoch"]}
    )
    if not owned:
        return False
    now = utcnow()
    for row in rows:
        row["time"] = now
    session.execute(_metric_upsert(session), rows)
    return True


def _metric_upsert(session: Session) -> Any:
    """INSERT ... ON CONFLICT (run_id, name, step) DO UPDATE: a value re-recorded for the same
    step replaces the old one instead of failing the run."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:  # pragma: no cover - other databases get a plain insert
        return insert(Metric)
    statement = dialect_insert(Metric)
    return statement.on_conflict_do_update(
        index_elements=["run_id", "name", "step"],
        set_={
            "epoch": statement.excluded.epoch,
            "value": statement.excluded.value,
            "time": statement.excluded.time,
        },
    )


def finish_run(
    *,
    session: Session,
    run_id: int,
    worker_id: str,
    status: RunStatus,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    step: int | None = None,
    epoch: int | None = None,
) -> bool:
    """Close a run the worker owns: completed / failed / cancelled / paused / queued (released
    for another worker), with where it got to. False when the worker no longer owns it."""
    values: dict[str, Any] = {"status": status, "requested_action": None, "error": error}
    if step is not None:
        values["step"] = step
    if epoch is not None:
        values["epoch"] = epoch
    if status == RunStatus.QUEUED:
        values["worker_id"] = None
    if status in FINISHED:
        values["finished"] = utcnow()
    if result is not None:
        values["result"] = result
    return _update_owned(session, run_id, worker_id, values)


def run_control(*, session: Session, run_id: int) -> tuple[str, str | None, str | None] | None:
    """(status, worker_id, requested_action) — what a training worker polls between steps."""
    row = session.execute(
        select(Run.status, Run.worker_id, Run.requested_action).where(Run.id == run_id)
    ).first()
    return None if row is None else (row[0], row[1], row[2])


def transition_run(
    *,
    session: Session,
    run_id: int,
    from_statuses: Sequence[str],
    values: dict[str, Any],
    requested_action: str | None = None,
) -> bool:
    """Change a run only if it is still in one of `from_statuses` (and, given
    `requested_action`, only while that request is pending): a race-free transition."""
    where = [Run.id == run_id, Run.status.in_(from_statuses)]
    if requested_action is not None:
        where.append(Run.requested_action == requested_action)
    result = session.execute(
        update(Run).where(*where).values(**values).execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def requeue_stale_runs(
    *, session: Session, stale_before: datetime, max_recoveries: int | None = None
) -> list[int]:
    """Runs still running on a worker whose heartbeat is older than `stale_before` (or gone): back
    to the queue, or to paused / cancelled when a pause / stop was waiting. A run whose worker
    has died `max_recoveries` times fails instead, with that history. Returns their ids."""
    fresh = select(Worker.id).where(Worker.heartbeat >= stale_before)
    orphans = session.execute(
        select(Run.id, Run.worker_id, Run.requested_action, Run.step, Run.recoveries).where(
            Run.status == RunStatus.RUNNING,
            (Run.worker_id.is_(None)) | (Run.worker_id.not_in(fresh)),
        )
    ).all()
    moved = []
    for run_id, worker_id, action, step, recoveries in orphans:
        now = utcnow()
        history = [*(recoveries or []), {"worker": worker_id, "step": step, "at": now.isoformat()}]
        status = obeyed_status(action)
        values: dict[str, Any] = {
            "status": status,
            "worker_id": None,
            "requested_action": None,
            "recoveries": history,
        }
        if status == RunStatus.QUEUED and max_recoveries and len(history) >= max_recoveries:
            status = values["status"] = RunStatus.FAILED
            values["error"] = _recovery_failure(run_id, history)
        if status in FINISHED:
            values["finished"] = now
        result = session.execute(
            update(Run)
            .where(
                Run.id == run_id, Run.status == RunStatus.RUNNING, _same(Run.worker_id, worker_id)
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:
            moved.append(run_id)
    session.execute(
        update(Worker)
        .where(Worker.heartbeat < stale_before, Worker.status != WorkerStatus.STOPPED)
        .values(status=WorkerStatus.LOST)
        .execution_options(synchronize_session=False)
    )
    return moved


def _recovery_failure(run_id: int, history: list[dict[str, Any]]) -> str:
    where = ", ".join(f"step {h['step']} ({h['worker'] or 'no worker'})" for h in history)
    return (
        f"run {run_id} stopped being retried: its worker died {len(history)} times, at {where}. "
        "Something in this run may be killing its workers (memory?); start it over with "
        f"`studio resume {run_id} --restart`, or raise STUDIO_MAX_RUN_ATTEMPTS to keep retrying"
    )


def _same(column: Any, value: Any) -> Any:
    return column.is_(None) if value is None else column == value


def rewind_run(*, session: Session, run_id: int, step: int, epoch: int) -> int:
    """Forget what happened after `step` (metrics and checkpoints), before resuming from the
    checkpoint taken there, so that no (name, step) is ever recorded twice."""
    deleted = session.execute(
        delete(Metric).where(Metric.run_id == run_id, Metric.step > step)
    ).rowcount
    session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id, Checkpoint.step > step))
    session.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(step=step, epoch=epoch, result=None)
        .execution_options(synchronize_session=False)
    )
    return deleted


def delete_run(*, session: Session, run_id: int) -> bool:
    """Delete a run with its metrics and checkpoint rows (the caller removes the files)."""
    session.execute(delete(Metric).where(Metric.run_id == run_id))
    session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id))
    return session.execute(delete(Run).where(Run.id == run_id)).rowcount == 1


# --- metrics ---------------------------------------------------------------------------------


def metrics_since(
    *,
    session: Session,
    run_id: int,
    after_id: int = 0,
    names: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[Metric]:
    query = select(Metric).where(Metric.run_id == run_id, Metric.id > after_id)
    if names:
        query = query.where(Metric.name.in_(names))
    query = query.order_by(Metric.id)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def latest_metrics(*, session: Session, run_id: int) -> dict[str, float]:
    """The most recently written value of each metric name."""
    newest = select(func.max(Metric.id)).where(Metric.run_id == run_id).group_by(Metric.name)
    rows = session.execute(select(Metric.name, Metric.value).where(Metric.id.in_(newest)))
    return {name: value for name, value in rows}


def metric_summary(*, session: Session, run_id: int, name: str) -> tuple[int, int, int, int]:
    """(count, first step, last step, highest id) of one metric."""
    row = session.execute(
        select(
            func.count(Metric.id), func.min(Metric.step), func.max(Metric.step), func.max(Metric.id)
        ).where(Metric.run_id == run_id, Metric.name == name)
    ).one()
    return int(row[0]), int(row[1] or 0), int(row[2] or 0), int(row[3] or 0)


def metric_points(*, session: Session, run_id: int, name: str) -> list[tuple[int, int, float]]:
    """(step, epoch, value) of every recorded point of one metric, by step. Downsampling for a
    chart happens in core.runs.curves, by one rule for first reads and incremental ones alike
    (min and max per bucket need every value, so this reads them all, without ORM objects)."""
    rows = session.execute(
        select(Metric.step, Metric.epoch, Metric.value)
        .where(Metric.run_id == run_id, Metric.name == name)
        .order_by(Metric.step)
    )
    return [tuple(row) for row in rows]


def metric_extremes(
    *, session: Session, run_id: int, name: str, width: int
) -> list[tuple[int, int, float]]:
    """(step, epoch, value) of each bucket's lowest and highest point (the earliest on a tie)
    for buckets of `width` steps, by step: what core.runs.curves keeps, found by the database
    in a few scans instead of sending every row to Python."""
    bucket = Metric.step // width
    of_metric = (Metric.run_id == run_id, Metric.name == name)
    extremes = session.execute(
        select(func.min(Metric.value), func.max(Metric.value), bucket)
        .where(*of_metric)
        .group_by(bucket)
    ).all()
    wanted = {(b, v) for low, high, b in extremes for v in (low, high) if v is not None}
    steps: set[int] = set()
    pairs = sorted(wanted)
    for start in range(0, len(pairs), 400):  # bounded IN lists
        steps.update(
            step
            for (step,) in session.execute(
                select(func.min(Metric.step))
                .where(*of_metric, tuple_(bucket, Metric.value).in_(pairs[start : start + 400]))
                .group_by(bucket, Metric.value)
            )
        )
    ordered = sorted(steps)
    rows: list[tuple[int, int, float]] = []
    for start in range(0, len(ordered), 400):
        rows += [
            tuple(row)
            for row in session.execute(
                select(Metric.step, Metric.epoch, Metric.value)
                .where(*of_metric, Metric.step.in_(ordered[start : start + 400]))
                .order_by(Metric.step)
            )
        ]
    return rows


def metric_duplicates(*, session: Session, run_id: int) -> int:
    """How many (name, step) pairs occur more than once (the unique constraint says 0)."""
    pairs = (
        select(Metric.name, Metric.step)
        .where(Metric.run_id == run_id)
        .group_by(Metric.name, Metric.step)
        .having(func.count(Metric.id) > 1)
        .subquery()
    )
    return session.scalar(select(func.count()).select_from(pairs)) or 0


# --- checkpoints -----------------------------------------------------------------------------


def add_checkpoint(
    *,
    session: Session,
    run_id: int,
    worker_id: str,
    epoch: int,
    step: int,
    path: str,
    metrics: dict[str, Any],
) -> Checkpoint | None:
    """Record a checkpoint file written by the owning worker (None if it lost the run)."""
    if not owns_run(session=session, run_id=run_id, worker_id=worker_id):
        return None
    row = Checkpoint(
        run_id=run_id, epoch=epoch, step=step, path=path, metrics=metrics, created=utcnow()
    )
    session.add(row)
    session.flush()
    return row


def list_checkpoints(*, session: Session, run_id: int) -> list[Checkpoint]:
    """A run's checkpoints, oldest (lowest step) first."""
    return list(
        session.scalars(
            select(Checkpoint)
            .where(Checkpoint.run_id == run_id)
            .order_by(Checkpoint.step, Checkpoint.id)
        )
    )


def delete_checkpoint(*, session: Session, checkpoint_id: int) -> None:
    session.execute(delete(Checkpoint).where(Checkpoint.id == checkpoint_id))


def prune_checkpoints(*, session: Session, run_id: int, keep_last: int) -> list[str]:
    """Forget a run's checkpoints except the last `keep_last` and the one with the lowest
    val_loss; returns the paths of the forgotten ones (the caller removes the files)."""
    rows = list_checkpoints(session=session, run_id=run_id)
    keep = {row.id for row in rows[-keep_last:]} if keep_last > 0 else set()
    scored = [row for row in rows if row.metrics.get("val_loss") is not None]
    if scored:
        keep.add(min(scored, key=lambda row: float(row.metrics["val_loss"])).id)
    dropped = [row for row in rows if row.id not in keep]
    if dropped:
        session.execute(delete(Checkpoint).where(Checkpoint.id.in_([row.id for row in dropped])))
    return [row.path for row in dropped]


def restart_run(*, session: Session, run_id: int, from_statuses: Sequence[str]) -> list[str] | None:
    """Queue a run again from step 0, forgetting its metrics, checkpoints and result; only from
    `from_statuses`. Returns the forgotten checkpoint paths; None when the run is elsewhere."""
    result = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status.in_(from_statuses))
        .values(
            status=RunStatus.QUEUED,
            requested_action=None,
            worker_id=None,
            error=None,
            result=None,
            finished=None,
            step=0,
            epoch=0,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    paths = [row.path for row in list_checkpoints(session=session, run_id=run_id)]
    session.execute(delete(Checkpoint).where(Checkpoint.run_id == run_id))
    session.execute(delete(Metric).where(Metric.run_id == run_id))
    return paths


# --- workers ---------------------------------------------------------------------------------


def register_worker(
    *, session: Session, worker_id: str, host: str, pid: int, device: str | None, status: str
) -> Worker:
    now = utcnow()
    row = session.get(Worker, worker_id)
    if row is None:
        row = Worker(
            id=worker_id,
            host=host,
            pid=pid,
            device=device,
            started=now,
            heartbeat=now,
            status=status,
        )
        session.add(row)
    else:
        row.host, row.pid, row.device, row.status, row.heartbeat = host, pid, device, status, now
    session.flush()
    return row


def heartbeat(*, session: Session, worker_id: str, status: str | None = None) -> None:
    """The worker is alive; so is the run it trains (its heartbeat moves too)."""
    now = utcnow()
    values: dict[str, Any] = {"heartbeat": now}
    if status is not None:
        values["status"] = status
    session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Run)
        .where(Run.worker_id == worker_id, Run.status == RunStatus.RUNNING)
        .values(heartbeat=now)
        .execution_options(synchronize_session=False)
    )


def set_worker_status(*, session: Session, worker_id: str, status: str) -> None:
    session.execute(
        update(Worker)
        .where(Worker.id == worker_id)
        .values(status=status)
        .execution_options(synchronize_session=False)
    )


def list_workers(*, session: Session) -> list[tuple[Worker, int | None]]:
    """Every worker with the id of the run it trains now (None when idle)."""
    running = (
        select(Run.worker_id, func.max(Run.id).label("run_id"))
        .where(Run.status == RunStatus.RUNNING)
        .group_by(Run.worker_id)
        .subquery()
    )
    rows = session.execute(
        select(Worker, running.c.run_id)
        .outerjoin(running, running.c.worker_id == Worker.id)
        .order_by(Worker.heartbeat.desc())
    )
    return [(worker, run_id) for worker, run_id in rows]


def fresh_worker_count(*, session: Session, fresh_after: datetime) -> int:
    """Workers (not foreground trainers) whose heartbeat is newer than `fresh_after`."""
    return (
        session.scalar(
            select(func.count(Worker.id)).where(
                Worker.heartbeat >= fresh_after, Worker.status.in_(SERVING)
            )
        )
        or 0
    )
