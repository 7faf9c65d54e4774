"""Engine set-up, migrations under a lock, and the one retry on "database is locked"."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core.store import db
from tests.conftest import REPO


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout_and_foreign_keys():
    with db.get_engine().connect() as connection:
        pragma = lambda name: connection.execute(text(f"PRAGMA {name}")).scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("busy_timeout") >= 10_000
        assert pragma("foreign_keys") == 1


LATEST = "0005"  # the newest file in core/store/migrations/versions


def test_the_schema_is_at_the_latest_migration():
    assert db.current_revision() == LATEST


def test_a_locked_database_is_retried_and_other_errors_are_not():
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE runs", {}, Exception("database is locked"))
        return "done"

    assert db.retry_on_locked(flaky) == "done" and len(calls) == 3

    def broken() -> None:
        raise OperationalError("SELECT", {}, Exception("no such table: nope"))

    with pytest.raises(OperationalError, match="no such table"):
        db.retry_on_locked(broken)


STARTER = textwrap.dedent(
    """
    import sys, time
    from core.store import db
    while time.time() < float(sys.argv[1]):  # start together
        pass
    db.get_engine()
    print(db.current_revision())
    """
)


def test_processes_starting_together_on_a_fresh_database_all_come_up(studio_home, backend):
    import time

    processes = 3
    start_at = str(time.time() + 1.5)
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", STARTER, start_at],
            cwd=REPO,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outputs = [p.communicate(timeout=120) for p in starters]
    for process, (out, err) in zip(starters, outputs, strict=True):
        assert process.returncode == 0, err
        assert out.strip() == LATEST
    assert (studio_home / "studio.db").exists() == (backend == "sqlite")
