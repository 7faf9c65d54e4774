"""Read-only calls never queue behind another process's write lock (WAL readers do not wait)."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from core.config import get_settings
from core.store import db
from core.store import repository as repo


def test_a_fresh_process_reads_while_another_holds_the_write_lock(monkeypatch):
    run_id = db.call(repo.create_run, spec={"layers": []}, dataset="digits", settings={}).id
    db.dispose_engines()  # as a new `studio status` process: no engine, no migration check yet
    monkeypatch.setattr(db, "SQLITE_BUSY_TIMEOUT_S", 0.05)  # any wait for the lock fails fast
    monkeypatch.setattr(db, "RETRY_DEADLINE_S", 0.0)
    holder = sqlite3.connect(get_settings().home / "studio.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE runs SET step = 7")
    try:
        row = db.call(repo.get_run, run_id=run_id, readonly=True)
        assert row.status == "queued" and row.step == 0  # the snapshot before the writer's change
        with pytest.raises(OperationalError, match="locked"):
            db.call(repo.delete_run, run_id=run_id)  # a writer still waits, and gives up here
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        db.dispose_engines()
