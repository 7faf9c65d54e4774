"""Two workers writing and a reader polling: no "database is locked" reaches anyone."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from tests.conftest import REPO

SECONDS = float(os.environ.get("STUDIO_CONCURRENCY_TEST_S", "20"))  # the issue says a minute

WRITER = textwrap.dedent(
    """
    import sys, time
    from dataclasses import dataclass
    from core.store import db, repository as repo
    from core.worker import Heartbeat

    @dataclass
    class Record:
        name: str
        step: int
        epoch: int
        value: float

    seconds, name = float(sys.argv[1]), sys.argv[2]
    db.call(repo.register_worker, worker_id=name, host="h", pid=0, device="cpu", status="busy")
    db.call(repo.create_run, spec={}, dataset="digits", settings={})
    run = None
    while run is None:
        run = db.call(repo.claim_next_run, worker_id=name)
    step, deadline = 0, time.monotonic() + seconds
    with Heartbeat(name, interval_s=0.05):
        while time.monotonic() < deadline:
            batch = [Record(n, step + i, 1, 0.5) for i in range(1, 26) for n in ("loss", "lr")]
            assert db.call(repo.record_metrics, run_id=run.id, worker_id=name, records=batch)
            db.call(repo.run_control, run_id=run.id, readonly=True)
            step += 25
            if step % 500 == 0:
                db.call(repo.add_checkpoint, run_id=run.id, worker_id=name, epoch=1,
                        step=step, path="x", metrics={"val_loss": 1.0})
    assert db.call(repo.finish_run, run_id=run.id, worker_id=name, status="completed")
    print(run.id, step)
    """
)

READER = textwrap.dedent(
    """
    import sys, time
    from core import runs
    seconds = float(sys.argv[1])
    seen, polls, deadline = {}, 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        for run in runs.list_runs():
            rows = runs.metrics_since(run.id, after_id=seen.get(run.id, 0))
            if rows:
                seen[run.id] = rows[-1].id
            runs.metrics_series(run.id, "loss", max_points=200)
        runs.list_workers()
        polls += 1
    print(polls)
    """
)


@pytest.mark.slow
def test_two_writers_and_a_polling_reader_never_see_a_locked_database():
    from core import runs

    runs.list_runs()  # migrate first, so the race is about data, not schema
    env = os.environ.copy()
    seconds = str(SECONDS)

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", *args],
            cwd=REPO,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    started = time.monotonic()
    processes = [start(WRITER, seconds, "w1"), start(WRITER, seconds, "w2"), start(READER, seconds)]
    outputs = [p.communicate(timeout=SECONDS + 120) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert "locked" not in err
        assert process.returncode == 0, err
    assert time.monotonic() - started >= SECONDS
    written = {}
    for out, _ in outputs[:2]:
        run_id, steps = map(int, out.split())
        written[run_id] = steps
    assert int(outputs[2][0]) > 10  # the reader kept polling
    for run_id, steps in written.items():
        assert runs.get_run(run_id).status == "completed"
        assert len(runs.metrics_since(run_id)) == 2 * steps  # every batch landed exactly once
