"""Passing faults of the machine (a database lock held by another process, a full disk) pause a
run at its last good checkpoint; the worker survives them and trains on once they clear."""

from __future__ import annotations

import errno
import io
import logging
import sqlite3
import threading
from pathlib import Path

import pytest

from core import worker as worker_module
from core.config import get_settings
from core.store import db
from core.store import repository as repo
from core.train import TrainConfig
from core.train import checkpoint as checkpoint_module
from tests.polling import wait_for
from tests.specs import TINY_MLP


def create_run(epochs: int) -> int:
    settings = TrainConfig(epochs=epochs, batch_size=32, device="cpu").to_dict()
    return db.call(repo.create_run, spec=TINY_MLP, dataset="digits", settings=settings).id


def run_row(run_id: int):
    return db.call(repo.get_run, run_id=run_id, readonly=True)


class InProcessWorker:
    """`run_worker` on a thread of this process, so a test can plant faults in it."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            worker_module.run_worker(poll_s=0.05, stop=self.stop)
        except BaseException as error:  # the test asserts there is none
            self.error = error

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


@pytest.fixture
def fast_faults(monkeypatch):
    """Short SQLite waits so that a held lock outlasts db's retries within a test."""
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_S", 0.1)
    monkeypatch.setattr(db, "RETRY_DEADLINE_S", 0.3)
    monkeypatch.setattr(worker_module, "FAULT_RETRY_S", 0.05)
    monkeypatch.setattr(worker_module, "FAULT_RETRY_MAX_S", 0.2)
    monkeypatch.setenv("STUDIO_HEARTBEAT_S", "0.1")
    db.dispose_engines()  # new connections take the short busy timeout
    yield
    db.dispose_engines()


@pytest.fixture
def in_process_worker(fast_faults):
    started: list[InProcessWorker] = []

    def start() -> InProcessWorker:
        started.append(InProcessWorker())
        return started[-1]

    yield start
    for worker in started:
        worker.close()


def test_a_lock_held_past_every_retry_pauses_the_run_and_the_worker_survives(
    in_process_worker, caplog
):
    caplog.set_level(logging.WARNING, logger="studio.worker")
    run_id = create_run(epochs=400)
    worker = in_process_worker()
    wait_for(lambda: run_row(run_id).step > 0, timeout=120, what="the run to train")

    holder = sqlite3.connect(get_settings().home / "studio.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
    wait_for(
        lambda: "pausing it at its last good checkpoint" in caplog.text,
        timeout=60,
        what="the worker to give up on the lock",
    )
    assert worker.thread.is_alive()
    holder.execute("ROLLBACK")
    holder.close()

    paused = wait_for(
        lambda: (row := run_row(run_id)).status == "paused" and row,
        timeout=60,
        what="the run to pause",
    )
    assert "locked by another process" in paused.error
    assert f"studio resume {run_id}" in paused.error
    assert worker.thread.is_alive() and worker.error is None

    next_run = create_run(epochs=1)
    wait_for(
        lambda: run_row(next_run).status == "completed", timeout=120, what="the next run to train"
    )
    assert worker.error is None


class FullDisk(io.BufferedWriter):
    """A checkpoint file whose write fails once with ENOSPC after a few bytes, once `full` is
    set (then the space is 'freed')."""

    full = threading.Event()

    def write(self, data) -> int:  # type: ignore[override]
        if FullDisk.full.is_set() and self.tell() > 100:
            FullDisk.full.clear()
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(data)


def test_a_full_disk_pauses_the_run_at_its_last_checkpoint_naming_the_free_space(
    in_process_worker, monkeypatch
):
    real_fdopen = checkpoint_module.os.fdopen
    FullDisk.full.clear()

    def fdopen(fd, mode="r", *args, **kwargs):
        if mode == "wb":
            return FullDisk(io.FileIO(fd, "w"))
        return real_fdopen(fd, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.os, "fdopen", fdopen)
    run_id = create_run(epochs=400)
    queued_next = create_run(epochs=1)
    worker = in_process_worker()
    wait_for(
        lambda: db.call(repo.list_checkpoints, run_id=run_id, readonly=True),
        timeout=120,
        what="a first good checkpoint",
    )
    FullDisk.full.set()
    paused = wait_for(
        lambda: (row := run_row(run_id)).status == "paused" and row,
        timeout=120,
        what="the run to pause on the full disk",
    )
    assert "no space left on the device holding STUDIO_HOME" in paused.error
    assert " free" in paused.error
    assert "unexpected pos" not in paused.error
    good = db.call(repo.list_checkpoints, run_id=run_id, readonly=True)
    assert good and all(Path(c.path).is_file() for c in good)
    leftovers = list((get_settings().checkpoints_dir / str(run_id)).glob("*.tmp"))
    assert leftovers == []

    wait_for(
        lambda: run_row(queued_next).status == "completed",
        timeout=120,
        what="the next queued run to complete",
    )
    assert worker.thread.is_alive() and worker.error is None


def test_sqlite_disk_full_is_named_as_a_full_disk_and_a_lock_as_a_lock():
    full = sqlite3.OperationalError("database or disk is full")
    assert db.describe_fault(full).startswith("no space left on the device holding STUDIO_HOME")
    assert "locked" in db.describe_fault(sqlite3.OperationalError("database is locked"))
    assert db.describe_fault(ValueError("bad value")) is None
    assert db.format_bytes(0) == "0 B"
    assert db.format_bytes(1536) == "1.5 KB"
