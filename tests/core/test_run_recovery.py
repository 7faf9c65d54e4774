"""Resuming never silently discards a run's history, and a run keeps only a few checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch

from core import runs
from core.config import get_settings
from core.store import db
from core.store import repository as repo
from core.train import TrainConfig
from core.train.callbacks import MetricRecord
from core.worker import RunRecorder, execute_run
from tests.specs import TINY_MLP

WORKER = "test-worker"


def claimed_run(epochs: int) -> int:
    settings = TrainConfig(epochs=epochs, batch_size=64, device="cpu").to_dict()
    run_id = db.call(repo.create_run, spec=TINY_MLP, dataset="digits", settings=settings).id
    assert db.call(repo.claim_next_run, worker_id=WORKER).id == run_id
    return run_id


def test_a_run_whose_every_checkpoint_is_unreadable_fails_and_keeps_its_metrics(tmp_path):
    run_id = claimed_run(epochs=2)
    broken = tmp_path / "epoch-0001.pt"
    broken.write_bytes(b"not a checkpoint")
    db.call(
        repo.add_checkpoint,
        run_id=run_id,
        worker_id=WORKER,
        epoch=1,
        step=10,
        path=str(broken),
        metrics={"val_loss": 1.0},
    )
    records = [MetricRecord("train_loss", step, 1, 2.0 / step) for step in range(1, 11)]
    db.call(repo.record_metrics, run_id=run_id, worker_id=WORKER, records=records)

    assert execute_run(run_id, worker_id=WORKER) == "failed"
    run = runs.get_run(run_id)
    assert "none of its 1 checkpoint(s) can be read" in run.error
    assert f"studio resume {run_id} --restart" in run.error
    assert len(runs.metrics_since(run_id)) == 10  # nothing deleted
    assert len(db.call(repo.list_checkpoints, run_id=run_id, readonly=True)) == 1

    restarted = runs.request_restart(run_id)  # the person's explicit choice
    assert restarted.status == "queued" and restarted.step == 0
    assert runs.metrics_since(run_id) == []
    assert db.call(repo.claim_next_run, worker_id=WORKER).id == run_id
    assert execute_run(run_id, worker_id=WORKER) == "completed"


def test_a_run_keeps_its_last_checkpoints_and_its_best_one(monkeypatch):
    monkeypatch.setenv("STUDIO_KEEP_CHECKPOINTS", "2")
    run_id = claimed_run(epochs=6)
    recorder = RunRecorder(run_id, worker_id=WORKER)
    for epoch, val_loss in enumerate([3.0, 1.0, 2.0, 4.0, 5.0], start=1):
        state = {"model": {"weight": torch.zeros(4)}}
        recorder.on_checkpoint(state, epoch=epoch, step=10 * epoch, metrics={"val_loss": val_loss})
    kept = db.call(repo.list_checkpoints, run_id=run_id, readonly=True)
    assert [c.epoch for c in kept] == [2, 4, 5]  # the best (val_loss 1.0) and the last two
    files = sorted(p.name for p in (get_settings().checkpoints_dir / str(run_id)).iterdir())
    assert files == sorted(Path(c.path).name for c in kept)  # the others' files are gone too


def test_a_confusion_matrix_past_the_class_limit_is_not_stored_and_says_why(monkeypatch):
    from core.worker import _result

    class Fit:
        def to_dict(self):
            return {"status": "completed", "confusion_matrix": [[0] * 150 for _ in range(150)]}

    monkeypatch.setenv("STUDIO_MAX_CONFUSION_CLASSES", "100")
    result = _result(Fit(), duration_s=1.0)
    assert result["confusion_matrix"] is None
    assert "150 classes is more than the limit of 100" in result["confusion_note"]
    assert "STUDIO_MAX_CONFUSION_CLASSES" in result["confusion_note"]


class Planted:
    def __reduce__(self):
        return (print, ("planted code ran",))


def test_a_refused_checkpoint_message_has_no_colour_codes_and_no_trust_hint(tmp_path):
    import pytest

    from core.errors import TrainingError
    from core.train.checkpoint import load_checkpoint

    path = tmp_path / "planted.pt"
    torch.save({"model": Planted()}, path)
    with pytest.raises(TrainingError) as refused:
        load_checkpoint(path)
    message = str(refused.value)
    assert "was refused" in message and "GLOBAL print" in message
    assert "\x1b[" not in message and "trust" not in message
