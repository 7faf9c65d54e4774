"""The database schema as SQLAlchemy 2.x models (the migrations in migrations/ create it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.states import RunStatus, WorkerStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware UTC times")
        value = value.astimezone(UTC)
        # SQLite compares timestamps as text, so every stored value must use the same offset form
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Spec(Base):
    """A named model spec; saving the same name again adds the next version."""

    __tablename__ = "specs"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_specs_name_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]]
    created: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetRecord(Base):
    """An uploaded dataset (the files live under settings.uploads_dir)."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # csv | images | text
    path: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    """One training run: what was asked (spec snapshot, dataset, settings) and how it went."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status_created", "status", "created", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    spec_name: Mapped[str | None] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]]  # snapshot: later edits of a saved spec do not change the run
    dataset: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict[str, Any]]  # TrainConfig.to_dict()
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED)  # a RunStatus
    requested_action: Mapped[str | None] = mapped_column(String(20))  # a RunRequest: stop | pause
    error: Mapped[str | None] = mapped_column(Text)
    device: Mapped[str | None] = mapped_column(String(50))
    worker_id: Mapped[str | None] = mapped_column(String(200), index=True)
    attempts: Mapped[int] = mapped_column(default=0)  # claims; a change means metrics rewound
    created: Mapped[datetime] = mapped_column(default=utcnow)
    started: Mapped[datetime | None]
    finished: Mapped[datetime | None]
    heartbeat: Mapped[datetime | None]
    epoch: Mapped[int] = mapped_column(default=0)
    step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int | None]
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # final metrics, confusion matrix
    # each time its worker died under it: [{"worker", "step", "at"}]; capped by max_run_attempts
    recoveries: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # lineage: the run this one started from (no foreign key: a deleted parent leaves the id,
    # which the Runs page shows as "deleted") and how, {"kind": "init-from" | "compress" | ...}
    parent_run_id: Mapped[int | None] = mapped_column(Integer, index=True)
    origin: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Metric(Base):
    """One value of one metric at one step; the id only grows, for incremental polling."""

    __tablename__ = "metrics"
    __table_args__ = (
        UniqueConstraint("run_id", "name", "step", name="uq_metrics_run_name_step"),
        Index("ix_metrics_run_id", "run_id", "id"),  # incremental polling: id > last seen
        # curves: per-bucket min / max read from the index alone (core.runs.curves)
        Index("ix_metrics_curve", "run_id", "name", "step", "value"),
        # ids are never reused after a resume deletes the newest rows (pollers rely on that)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[int]
    epoch: Mapped[int]
    value: Mapped[float] = mapped_column(Float)
    time: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    """A checkpoint file written at an epoch end (or at a pause)."""

    __tablename__ = "checkpoints"
    __table_args__ = (Index("ix_checkpoints_run_step", "run_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    epoch: Mapped[int]
    step: Mapped[int]
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created: Mapped[datetime] = mapped_column(default=utcnow)


class Worker(Base):
    """A `studio worker` (or a foreground `studio train`) process and its last heartbeat."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    device: Mapped[str | None] = mapped_column(Text)
    started: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20), default=WorkerStatus.IDLE)  # a WorkerStatus
