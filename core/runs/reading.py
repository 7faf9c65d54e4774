"""Reading runs and their metrics and checkpoints (read-only transactions)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import NotFoundError
from core.runs.views import CheckpointView, MetricRow, MetricSeries, RunView, _run_view
from core.store import db
from core.store import repository as repo

if TYPE_CHECKING:
    pass

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
