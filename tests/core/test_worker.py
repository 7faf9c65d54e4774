"""Real `studio worker` subprocesses against a real SQLite file (and PostgreSQL where a test takes
`backend`): claiming, recovery, steering."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import TypeVar

import pytest

from core import runs
from core.cli.main import main as studio
from core.store import db
from core.store import repository as repo
from tests.polling import wait_for
from tests.specs import NARROW_DIGITS_CNN, TINY_MLP
from tests.worker_process import spawn_worker

T = TypeVar("T")


class Worker:
    """A `studio worker` subprocess with a fast heartbeat; its log goes to a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        self.process = spawn_worker(log, *args)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"worker still running after {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def workers(tmp_path):
    started: list[Worker] = []

    def start(*args: str) -> Worker:
        worker = Worker(tmp_path / f"worker-{len(started)}.log", *args)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def curves(run_id: int) -> dict[tuple[str, int], float]:
    """Every recorded (name, step) -> value, minus the wall-clock-dependent throughput."""
    return {
        (r.name, r.step): r.value for r in runs.metrics_since(run_id) if r.name != "samples_per_s"
    }


def status(run_id: int) -> str:
    return runs.get_run(run_id).status


@pytest.mark.slow
def test_a_killed_worker_s_run_resumes_elsewhere_with_the_uninterrupted_result(workers):
    config = {"epochs": 8, "batch_size": 32, "device": "cpu", "seed": 3, "log_every": 5}
    # the uninterrupted reference is trained by a worker process too: a process's earlier work
    # (this test process has run exports and explanations) can change float rounding by 1e-7
    reference_id = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=config)
    trainer = workers("--max-runs", "1")
    assert trainer.wait(timeout=120) == 0, trainer.log.read_text()
    reference = runs.run_result(runs.get_run(reference_id))
    assert reference["status"] == "completed"

    run_id = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=config)
    first = workers()
    wait_for(lambda: runs.list_checkpoints(run_id), timeout=120, what="the first checkpoint")
    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    assert status(run_id) == "running", "the run ended before the kill; make it longer"

    second = workers("--max-runs", "1")
    assert second.wait(timeout=120) == 0, second.log.read_text()
    run = runs.get_run(run_id)
    assert run.status == "completed", run.error
    assert run.attempts == 2  # claimed by the killed worker, then once more
    assert "queued again" in second.log.read_text()
    assert db.call(repo.metric_duplicates, run_id=run_id) == 0
    resumed, uninterrupted = curves(run_id), curves(reference["run_id"])
    assert resumed == uninterrupted  # same steps, same values, nothing twice, nothing missing
    assert run.result["metrics"] | {"samples_per_s": 0} == reference["metrics"] | {
        "samples_per_s": 0
    }
    assert run.confusion_matrix == reference["confusion_matrix"]


@pytest.mark.slow
def test_two_workers_train_ten_queued_runs_each_exactly_once(workers, backend):
    config = {"steps": 3, "batch_size": 32, "device": "cpu"}
    queued = [runs.submit_run(spec=TINY_MLP, dataset="digits", config=config) for _ in range(10)]
    pair = [workers("--once"), workers("--once")]
    for worker in pair:
        assert worker.wait(timeout=180) == 0, worker.log.read_text()
    done = [runs.get_run(run_id) for run_id in queued]
    assert [run.status for run in done] == ["completed"] * 10
    assert [run.attempts for run in done] == [1] * 10  # claimed once each
    trained = sum(int(w.log.read_text().rsplit("worker trained ", 1)[1].split()[0]) for w in pair)
    assert trained == 10
    assert {run.worker_id for run in done} <= {w.id for w in runs.list_workers(include_dead=True)}


@pytest.mark.slow
def test_pause_resume_stop_from_another_process_and_sigterm_requeues(workers, capsys):
    long = {"epochs": 200, "batch_size": 16, "device": "cpu", "log_every": 5}
    run_id = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=long)
    worker = workers()
    wait_for(lambda: runs.get_run(run_id).step > 0, timeout=120, what="training to start")

    assert studio(["pause", str(run_id)]) == 0
    wait_for(lambda: status(run_id) == "paused", timeout=30, what="the pause")
    paused = runs.get_run(run_id)
    assert runs.list_checkpoints(run_id)[-1].step == paused.step  # checkpointed where it paused

    assert studio(["resume", str(run_id)]) == 0
    wait_for(lambda: runs.get_run(run_id).step > paused.step, timeout=60, what="training to resume")
    assert runs.get_run(run_id).attempts == 2

    assert studio(["stop", str(run_id)]) == 0
    wait_for(lambda: status(run_id) == "cancelled", timeout=30, what="the stop")
    assert db.call(repo.metric_duplicates, run_id=run_id) == 0
    capsys.readouterr()

    # SIGTERM mid-run: the step finishes, the run is checkpointed and queued for another worker
    second = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=long)
    wait_for(lambda: runs.get_run(second).step > 0, timeout=60, what="the second run to start")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0, worker.log.read_text()
    requeued = runs.get_run(second)
    assert requeued.status == "queued" and requeued.worker_id is None
    assert runs.list_checkpoints(second)[-1].step == requeued.step
    [stopped] = runs.list_workers(include_dead=True)
    assert stopped.status == "stopped"


@pytest.mark.slow
def test_a_busy_worker_requeues_a_dead_worker_s_run_without_waiting_to_be_idle(workers):
    long = {"epochs": 200, "batch_size": 16, "device": "cpu", "log_every": 5}
    busy_run = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=long)
    worker = workers()
    wait_for(lambda: runs.get_run(busy_run).step > 0, timeout=120, what="training to start")

    orphan = runs.submit_run(spec=TINY_MLP, dataset="digits", config={"steps": 3, "device": "cpu"})
    db.call(repo.register_worker, worker_id="dead", host="gone", pid=1, device="cpu", status="busy")
    assert db.call(repo.claim_next_run, worker_id="dead").id == orphan
    # "dead" never beats again: stale after 5 s (STUDIO_STALE_AFTER_S), while `worker` trains
    wait_for(lambda: status(orphan) == "queued", timeout=60, what="the busy worker to reclaim")
    [alive] = runs.list_workers()  # "dead" is marked lost
    busy = runs.get_run(busy_run)
    assert (busy.status, busy.worker_id) == ("running", alive.id), "it was not busy any more"
    assert f"run {orphan}: its worker stopped heartbeating" in worker.log.read_text()


@pytest.mark.slow
def test_ensure_local_worker_spawns_one_worker_that_trains_and_stops_on_sigterm(monkeypatch):
    monkeypatch.setenv("STUDIO_HEARTBEAT_S", "0.2")
    assert runs.ensure_local_worker() is True
    try:
        assert runs.ensure_local_worker() is False  # a second call does not spawn another
        [worker] = wait_for(runs.list_workers, timeout=120, what="the spawned worker's heartbeat")
        assert worker.alive and worker.device
        run_id = runs.submit_run(
            spec=TINY_MLP, dataset="digits", config={"steps": 2, "device": "cpu"}
        )
        wait_for(lambda: status(run_id) == "completed", timeout=60, what="the worker to train")
        os.kill(worker.pid, signal.SIGTERM)
        wait_for(
            lambda: runs.list_workers(include_dead=True)[0].status == "stopped",
            timeout=60,
            what="the worker to stop",
        )
    finally:  # the worker is detached: never leave it behind
        for spawned in runs.list_workers(include_dead=True):
            if spawned.status != "stopped":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(spawned.pid, signal.SIGKILL)
