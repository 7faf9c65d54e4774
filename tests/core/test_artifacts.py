"""Shared artifacts (STUDIO_ARTIFACTS): two "machines" (processes with their own STUDIO_HOME) on
one PostgreSQL database and one artifact root; and the remote (fsspec URL) code path."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from core import artifacts, runs
from core.config import get_settings
from core.data import load_dataset, register_upload
from core.store import db
from core.store import repository as repo
from core.train.checkpoint import load_checkpoint, save_checkpoint
from tests.polling import wait_for
from tests.worker_process import spawn_worker

MLP = {"name": "mlp", "layers": [{"type": "Linear", "out_features": 32}, {"type": "ReLU"},
                                 {"type": "Linear"}]}  # fmt: skip


def digits_csv(path: Path) -> Path:
    """scikit-learn's digits as a CSV upload: 64 pixel columns and a label."""
    digits = load_digits()
    table = np.column_stack([digits.data, digits.target]).astype(int)
    header = ",".join([f"p{i}" for i in range(64)] + ["label"])
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")
    return path


def machine(home: Path, log: Path, *args: str) -> subprocess.Popen:
    """A `studio worker` of another machine: its own STUDIO_HOME, the shared database/root."""
    return spawn_worker(log, *args, env={"STUDIO_HOME": str(home)})


@pytest.mark.slow
def test_a_run_killed_on_one_machine_resumes_on_another_from_the_shared_root(
    tmp_path, monkeypatch, postgres_server
):
    shared = tmp_path / "shared-artifacts"
    home_a, home_b = tmp_path / "machine-a", tmp_path / "machine-b"
    monkeypatch.setenv("STUDIO_DATABASE_URL", postgres_server.new_database())
    monkeypatch.setenv("STUDIO_ARTIFACTS", f"file://{shared}")
    monkeypatch.setenv("STUDIO_HOME", str(home_a))
    # machine A: a dataset is uploaded and a run on it queued
    info = register_upload("csv", digits_csv(tmp_path / "digits.csv"), name="my-digits")
    assert (shared / "uploads" / "my-digits" / "manifest.json").is_file()
    config = {"epochs": 8, "batch_size": 64, "device": "cpu", "seed": 1}
    run_id = runs.submit_run(spec=MLP, dataset=info.name, config=config)
    first = machine(home_a, tmp_path / "a.log")
    try:
        wait_for(lambda: runs.list_checkpoints(run_id), timeout=120, what="a first checkpoint")
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert runs.get_run(run_id).status == "running", "the run ended before the kill"
        # machine B: never saw the upload or the checkpoint on its own disk
        second = machine(home_b, tmp_path / "b.log", "--max-runs", "1")
        assert second.wait(timeout=240) == 0, (tmp_path / "b.log").read_text()
    finally:
        for process in (first, locals().get("second")):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    run = runs.get_run(run_id)
    assert run.status == "completed", run.error
    assert run.attempts == 2 and "queued again" in (tmp_path / "b.log").read_text()
    assert run.result["metrics"]["test_accuracy"] > 0.8
    checkpoints = runs.list_checkpoints(run_id)
    assert checkpoints and all(c.path.startswith(str(shared)) for c in checkpoints)
    assert not (home_a / "artifacts").exists() and not (home_b / "artifacts").exists()
    assert db.call(repo.metric_duplicates, run_id=run_id) == 0
    db.dispose_engines()


def test_a_remote_root_keeps_checkpoints_and_uploads_for_every_machine(tmp_path, monkeypatch):
    """memory:// stands in for s3:// (same fsspec calls; it lives in this process only)."""
    monkeypatch.setenv("STUDIO_ARTIFACTS", "memory://studio-test")
    url = artifacts.location("checkpoints", "7", "epoch-0001.pt")
    assert url == "memory://studio-test/checkpoints/7/epoch-0001.pt"
    saved = save_checkpoint(url, {"model": {"w": torch.ones(2)}, "step": 3})
    assert saved == url and load_checkpoint(url)["step"] == 3
    artifacts.remove_tree("checkpoints", "7")
    assert not artifacts.exists(url)

    rows = [[i % 5, (i * 7) % 3, i % 2] for i in range(40)]
    source = tmp_path / "pairs.csv"
    source.write_text("a,b,label\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    register_upload("csv", source, name="pairs")
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "other-machine"))  # same root, new disk
    assert not get_settings().uploads_dir.exists()
    data = load_dataset("pairs")
    assert data.train.x.shape[1:] == (2,)
    assert sum(len(split.x) for split in (data.train, data.val, data.test)) == 40
    assert (get_settings().uploads_dir / "pairs" / "manifest.json").is_file()
