"""Reading runs and their metrics and checkpoints (read-only transactions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from core.errors import NotFoundError
from core.runs.curves import BUCKETS, bucket_width, reduce_points
from core.runs.views import CheckpointView, MetricRow, MetricSeries, RunView, _run_view
from core.store import db
from core.store import repository as repo

T = TypeVar("T")


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


def children_of(run_id: int) -> list[RunView]:
    """Runs started from `run_id` (fine-tunes, compressions, `--init-from`), oldest first."""
    rows = db.call(repo.child_runs, run_id=int(run_id), readonly=True)
    return [_run_view(row) for row in rows]


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


def metrics_series(run_id: int, name: str, *, max_points: int = 2 * BUCKETS) -> MetricSeries:
    """One metric's curve downsampled by the one rule of core.runs.curves (min and max of
    max_points // 2 step buckets): what a chart draws, equal to what incremental reads of the
    same rows build up."""
    if max_points < 2:
        raise ValueError(f"max_points={max_points} is too small; ask for at least 2")

    def read(session: Any) -> MetricSeries:
        count, _, last_step, last_id = repo.metric_summary(
            session=session, run_id=run_id, name=name
        )
        if count <= max_points:
            points = repo.metric_points(session=session, run_id=run_id, name=name)
        else:  # only each bucket's lowest and highest rows can be kept: let the database find them
            width = bucket_width(last_step, max_points // 2)
            points = repo.metric_extremes(session=session, run_id=run_id, name=name, width=width)
        return _series(
            name, points, max_points=max_points, last_step=last_step, last_id=last_id, total=count
        )

    return db.call(_in_session(read), readonly=True)


def _series(
    name: str,
    points: list[tuple[int, int, float]],
    *,
    max_points: int,
    last_step: int,
    last_id: int,
    total: int,
) -> MetricSeries:
    table = np.asarray(points, dtype=np.float64).reshape(-1, 3)  # (point, step/epoch/value)
    curve = reduce_points(table[:, 0], table[:, 1], table[:, 2], buckets=max_points // 2)
    return MetricSeries(
        name=name,
        steps=curve.steps.tolist(),
        epochs=curve.epochs.tolist(),
        values=curve.values.tolist(),
        total=total,
        last_id=last_id,
        last_step=last_step,
    )


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
