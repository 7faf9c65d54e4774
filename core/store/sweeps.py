"""Sweeps in the database: their rows (migration 0005) and all their SQL.

A sweep is a row in `sweeps` (what to search and how) plus an Optuna study in the same
database (core.sweeps.study); each trial is an ordinary run, tied to its trial number by a row
in `sweep_trials`. The run and its `sweep_trials` row are written in one transaction, so a
trial has a run or has none, never half of one. Queuing trials is serialized per sweep by a
lease on its row (`claim_sweep`): a claim that is not released (its process died) expires.

Keyword-only, typed functions taking the session they run in, like core.store.repository.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.states import ACTIVE, SweepStatus
from core.store import repository as repo
from core.store.models import Base, Metric, Run, utcnow


class Sweep(Base):
    """One search: the model and data, the base settings, the space, objective and budget."""

    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    spec_name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]  # snapshot, as runs keep theirs
    dataset: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]]  # the base run settings every trial starts from
    space: Mapped[list[Any]] = mapped_column(JSON)  # core.sweeps.space.Param.to_dict() each
    objective: Mapped[str] = mapped_column(String(100))  # a metric name, e.g. val_accuracy
    direction: Mapped[str] = mapped_column(String(10))  # maximize | minimize
    sampler: Mapped[str] = mapped_column(String(20))  # tpe | random | grid
    pruner: Mapped[str] = mapped_column(String(20))  # median | hyperband | none
    max_trials: Mapped[int | None]
    timeout_s: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(default=0)  # the samplers' seed (plus the trial count)
    status: Mapped[str] = mapped_column(String(20), default=SweepStatus.RUNNING)
    error: Mapped[str | None] = mapped_column(Text)
    study_name: Mapped[str] = mapped_column(String(200), unique=True)
    created: Mapped[datetime] = mapped_column(default=utcnow)
    finished: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]


class SweepTrial(Base):
    """Trial `number` of a sweep and the run that trains it (None: its settings were refused)."""

    __tablename__ = "sweep_trials"
    __table_args__ = (UniqueConstraint("sweep_id", "number", name="uq_sweep_trials_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)  # Optuna's trial number
    study_trial_id: Mapped[int] = mapped_column(Integer)  # Optuna's trial id
    run_id: Mapped[int | None] = mapped_column(Integer, index=True)  # no FK: runs can be deleted
    params: Mapped[dict[str, Any]]
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(default=utcnow)


# --- sweeps ------------------------------------------------------------------------------------


def create_sweep(*, session: Session, **values: Any) -> Sweep:
    """A new running sweep; `values` are Sweep's columns (study_name is filled from the id)."""
    row = Sweep(created=utcnow(), status=SweepStatus.RUNNING, study_name="", **values)
    session.add(row)
    session.flush()
    row.study_name = f"studio-sweep-{row.id}"
    session.flush()
    return row


def get_sweep(*, session: Session, sweep_id: int) -> Sweep | None:
    return session.get(Sweep, sweep_id)


def list_sweeps(*, session: Session, limit: int | None = None) -> list[Sweep]:
    """Sweeps, newest first."""
    query = select(Sweep).order_by(Sweep.id.desc())
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def running_sweep_ids(*, session: Session) -> list[int]:
    return list(
        session.scalars(
            select(Sweep.id).where(Sweep.status == SweepStatus.RUNNING).order_by(Sweep.id)
        )
    )


def claim_sweep(*, session: Session, sweep_id: int, owner: str, until: datetime) -> bool:
    """Take the right to queue this running sweep's next trials until `until`; False when
    another process holds it (its claim has not expired) or the sweep is not running."""
    now = utcnow()
    result = session.execute(
        update(Sweep)
        .where(
            Sweep.id == sweep_id,
            Sweep.status == SweepStatus.RUNNING,
            (Sweep.lease_until.is_(None))
            | (Sweep.lease_until < now)
            | (Sweep.lease_owner == owner),
        )
        .values(lease_owner=owner, lease_until=until)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def release_sweep(*, session: Session, sweep_id: int, owner: str) -> None:
    session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.lease_owner == owner)
        .values(lease_owner=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def finish_sweep(
    *, session: Session, sweep_id: int, status: SweepStatus, error: str | None = None
) -> bool:
    """Close a running sweep (completed / stopped); False when it was not running."""
    result = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == SweepStatus.RUNNING)
        .values(status=status, finished=utcnow(), error=error)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


# --- trials ------------------------------------------------------------------------------------


def add_trial(
    *,
    session: Session,
    sweep_id: int,
    number: int,
    study_trial_id: int,
    params: dict[str, Any],
    run: dict[str, Any] | None,
    error: str | None = None,
) -> SweepTrial:
    """Record trial `number`, with its run created in the same transaction from `run`
    (core.store.repository.create_run's keywords), or none with the `error` that refused it."""
    run_id = None
    if run is not None:
        run_id = repo.create_run(session=session, **run).id
    row = SweepTrial(
        sweep_id=sweep_id,
        number=number,
        study_trial_id=study_trial_id,
        run_id=run_id,
        params=params,
        error=error,
        created=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def trials_with_runs(*, session: Session, sweep_id: int) -> list[tuple[SweepTrial, Run | None]]:
    """Every trial of a sweep by number, with its run (None: refused, or deleted since)."""
    rows = session.execute(
        select(SweepTrial, Run)
        .outerjoin(Run, Run.id == SweepTrial.run_id)
        .where(SweepTrial.sweep_id == sweep_id)
        .order_by(SweepTrial.number)
    )
    return [(trial, run) for trial, run in rows]


def trial_of_run(*, session: Session, run_id: int) -> tuple[SweepTrial, Sweep] | None:
    """The sweep trial a run trains, with its sweep; None for a run outside any sweep."""
    row = session.execute(
        select(SweepTrial, Sweep)
        .join(Sweep, Sweep.id == SweepTrial.sweep_id)
        .where(SweepTrial.run_id == run_id)
    ).first()
    return None if row is None else (row[0], row[1])


def count_active_trials(*, session: Session, sweep_id: int, statuses=None) -> int:
    """Trials whose run is in `statuses` (default: queued, running or paused)."""
    wanted = list(statuses or ACTIVE)
    return (
        session.scalar(
            select(func.count(SweepTrial.id))
            .join(Run, Run.id == SweepTrial.run_id)
            .where(SweepTrial.sweep_id == sweep_id, Run.status.in_(wanted))
        )
        or 0
    )


def best_values(
    *, session: Session, run_ids: list[int], name: str, highest: bool
) -> dict[int, float]:
    """run id -> the best recorded value of metric `name` (highest or lowest)."""
    if not run_ids:
        return {}
    best = func.max(Metric.value) if highest else func.min(Metric.value)
    rows = session.execute(
        select(Metric.run_id, best)
        .where(Metric.run_id.in_(run_ids), Metric.name == name)
        .group_by(Metric.run_id)
    )
    return {run_id: float(value) for run_id, value in rows if value is not None}


def sweep_run_ids(*, session: Session, sweep_id: int, statuses=None) -> list[int]:
    query = (
        select(Run.id)
        .join(SweepTrial, SweepTrial.run_id == Run.id)
        .where(SweepTrial.sweep_id == sweep_id)
    )
    if statuses:
        query = query.where(Run.status.in_(list(statuses)))
    return list(session.scalars(query))
