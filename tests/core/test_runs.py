"""The run service in-process: validation before queueing, steering, reading, cleaning up."""

from __future__ import annotations

import math

import pytest
import torch

from core import runs
from core.errors import DataError, NotFoundError, SettingsError, SpecError, TrainingError
from core.facts import ModelFacts
from core.store import db
from core.store import repository as repo
from tests.specs import DIGITS_CNN, TINY_MLP

FAST = {"epochs": 2, "batch_size": 64, "device": "cpu"}


def test_a_digits_cnn_trains_in_the_foreground_and_is_recorded(monkeypatch):
    monkeypatch.setenv("STUDIO_CHECKPOINT_EVERY_S", "0")  # a checkpoint at every epoch end
    seen = []
    result = runs.train_run_foreground(
        spec=DIGITS_CNN,
        dataset="digits",
        config={"epochs": 3, "device": "cpu"},
        progress=lambda step, total, latest: seen.append((step, total)),
    )
    assert result["status"] == "completed", result["error"]
    assert result["metrics"]["test_accuracy"] > 0.8  # > 0.9 after 5 epochs: see tests/cli
    assert set(result) >= {"run_id", "status", "epochs", "steps", "duration_s", "samples_per_s"}
    assert set(result["metrics"]) >= {"train_loss", "val_loss", "val_accuracy", "test_accuracy"}
    assert seen and seen[-1][1] == result["steps"]
    run = runs.get_run(result["run_id"])
    assert run.status == "completed" and run.spec_name == "digits-cnn" and run.device == "cpu"
    assert run.step == run.total_steps == result["steps"] and run.progress == 1.0
    assert len(run.confusion_matrix) == 10 and sum(map(sum, run.confusion_matrix)) == 359
    checkpoints = runs.list_checkpoints(run.id)
    assert [c.epoch for c in checkpoints] == [1, 2, 3]
    assert checkpoints[0].path.endswith("epoch-0001-step-00021.pt")
    assert runs.latest_metrics(run.id)["test_accuracy"] == result["metrics"]["test_accuracy"]
    # the model comes back from its checkpoint and predicts as well as it did in training
    model, data, loaded = runs.load_run_model(run.id)
    assert loaded.id == run.id
    with torch.no_grad():
        predicted = model(data.test.x).argmax(1)
    accuracy = (predicted == data.test.y).float().mean().item()
    assert accuracy == pytest.approx(result["metrics"]["test_accuracy"])


def test_an_mnist1d_model_trains_too():
    mlp = {
        "name": "mnist1d-mlp",
        "layers": [
            {"type": "Flatten"},
            {"type": "Linear", "out_features": 64},
            {"type": "ReLU"},
            {"type": "Linear"},
        ],
    }
    result = runs.train_run_foreground(
        spec=mlp, dataset="mnist1d", config={"epochs": 10, "lr": 0.003, "device": "cpu"}
    )
    assert result["status"] == "completed", result["error"]
    assert result["metrics"]["test_accuracy"] > 0.4  # 10 classes: chance is 0.1
    assert len(runs.get_run(result["run_id"]).confusion_matrix) == 10


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"lr": -1.0}, SettingsError, "lr=-1.0"),
        ({"batch_size": 100_000}, SettingsError, "larger than the training set"),
        ({"device": "cuda:7"}, SettingsError, "cuda:7 is not available"),
        ({"optimizer": "lbfgs"}, SettingsError, "optimizer='lbfgs'"),
    ],
)
def test_bad_settings_are_refused_and_nothing_is_queued(config, error, message):
    with pytest.raises(error, match=message):
        runs.submit_run(spec=TINY_MLP, dataset="digits", config=config)
    assert runs.list_runs() == []


def test_a_spec_that_does_not_fit_the_dataset_is_refused_with_the_builders_message():
    from core.builder import trace

    bad = {"layers": [{"type": "Conv1d", "out_channels": 4, "kernel_size": 3}, {"type": "Linear"}]}
    expected = trace(bad, ModelFacts(input_shape=(1, 8, 8), num_classes=10)).error
    assert expected is not None
    with pytest.raises(SpecError) as refused:
        runs.submit_run(spec=bad, dataset="digits", config=FAST)
    assert str(refused.value) == str(expected)
    with pytest.raises(SpecError):
        runs.train_run_foreground(spec=bad, dataset="digits", config=FAST)
    assert runs.list_runs() == []


def test_a_spec_without_its_class_scores_is_refused_before_queueing():
    unfinished = {"layers": [{"type": "Flatten"}, {"type": "Linear", "out_features": 32}]}
    unfinished["layers"].append({"type": "ReLU"})
    with pytest.raises(SpecError, match="layer 2 ReLU: the model ends with .32,. per sample"):
        runs.submit_run(spec=unfinished, dataset="digits", config=FAST)
    with pytest.raises(SpecError, match="end with a Linear of out_features=10"):
        runs.train_run_foreground(spec=unfinished, dataset="digits", config=FAST)
    assert runs.list_runs() == []


def test_an_unknown_dataset_is_refused_and_nothing_is_queued():
    with pytest.raises(DataError):
        runs.submit_run(spec=TINY_MLP, dataset="no-such-dataset", config=FAST)
    assert runs.list_runs() == []


def test_queued_runs_can_be_paused_resumed_and_stopped(backend):
    run_id = runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST, spec_name="mine")
    run = runs.get_run(run_id)
    assert (run.status, run.spec_name, run.settings["epochs"]) == ("queued", "mine", 2)
    assert runs.request_pause(run_id).status == "paused"
    assert runs.request_resume(run_id).status == "queued"
    assert runs.request_stop(run_id).status == "cancelled"
    with pytest.raises(TrainingError, match=rf"run {run_id} is cancelled; only queued, running"):
        runs.request_stop(run_id)
    with pytest.raises(TrainingError, match="only paused runs can be resumed"):
        runs.request_resume(run_id)
    with pytest.raises(NotFoundError, match="run 999 does not exist"):
        runs.get_run(999)


def test_a_running_run_gets_a_request_and_cannot_be_deleted(backend):
    run_id = runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST)
    db.call(repo.claim_next_run, worker_id="elsewhere")
    assert runs.request_pause(run_id).requested_action == "pause"
    assert runs.request_resume(run_id).requested_action is None  # withdraws the pause
    assert runs.request_stop(run_id).requested_action == "stop"
    with pytest.raises(TrainingError, match="stop it first"):
        runs.delete_run(run_id)


def test_deleting_a_run_removes_its_rows_and_files(studio_home, backend):
    result = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=FAST)
    run_id = result["run_id"]
    folder = studio_home / "artifacts" / "checkpoints" / str(run_id)
    assert any(folder.iterdir())
    runs.delete_run(run_id)
    assert not folder.exists()
    assert runs.metrics_since(run_id) == [] and runs.list_checkpoints(run_id) == []
    with pytest.raises(NotFoundError):
        runs.get_run(run_id)


def test_a_nan_loss_fails_the_run_with_the_step_and_keeps_the_last_checkpoint(monkeypatch):
    real = torch.nn.functional.cross_entropy
    calls = []

    def poisoned(*args, **kwargs):
        loss = real(*args, **kwargs)
        if torch.is_grad_enabled():  # training steps only, not evaluation
            calls.append(1)
        return loss * math.nan if len(calls) > 30 else loss  # epoch 1 is 21 steps

    monkeypatch.setattr(torch.nn.functional, "cross_entropy", poisoned)
    result = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=FAST)
    assert result["status"] == "failed"
    assert "NaN" in result["error"] and "step 31" in result["error"]
    run = runs.get_run(result["run_id"])
    assert run.status == "failed" and run.error == result["error"]
    assert [c.step for c in runs.list_checkpoints(run.id)] == [21]


def test_metrics_can_be_polled_incrementally_and_downsampled():
    result = runs.train_run_foreground(
        spec=TINY_MLP, dataset="digits", config={**FAST, "log_every": 1}
    )
    run_id = result["run_id"]
    everything = runs.metrics_since(run_id)
    assert [r.id for r in everything] == sorted(r.id for r in everything)
    middle = everything[len(everything) // 2].id
    assert runs.metrics_since(run_id, after_id=middle) == [r for r in everything if r.id > middle]
    losses = runs.metrics_since(run_id, names=["train_loss"])
    assert {r.name for r in losses} == {"train_loss"}
    series = runs.metrics_series(run_id, "train_loss", max_points=10)
    assert len(series.steps) <= 10 and series.total == len(losses)
    assert series.last_step == losses[-1].step and series.last_id == losses[-1].id
    assert min(series.values) == min(r.value for r in losses)  # the lowest point is kept
    full = runs.metrics_series(run_id, "val_loss", max_points=10)
    assert full.values == [r.value for r in runs.metrics_since(run_id, names=["val_loss"])]


def test_specs_are_saved_by_name_with_versions():
    assert runs.save_spec(name="lenet", spec=TINY_MLP).version == 1
    assert runs.save_spec(name="lenet", spec=DIGITS_CNN).version == 2
    assert runs.get_spec("lenet").spec == DIGITS_CNN
    assert runs.get_spec("lenet", version=1).spec == TINY_MLP
    assert [(s.name, s.version) for s in runs.list_specs()] == [("lenet", 2)]
    with pytest.raises(NotFoundError, match="no saved spec 'nope'"):
        runs.get_spec("nope")


def test_a_fresh_worker_means_no_new_worker_is_spawned():
    db.call(repo.register_worker, worker_id="w", host="h", pid=1, device="cpu", status="idle")
    assert runs.ensure_local_worker() is False
    [worker] = runs.list_workers()
    assert (worker.id, worker.alive, worker.run_id) == ("w", True, None)


def test_a_device_this_machine_lacks_is_accepted_when_a_live_worker_has_it():
    with pytest.raises(SettingsError, match="no worker is alive"):
        runs.submit_run(spec=TINY_MLP, dataset="digits", config={**FAST, "device": "cuda:1"})
    db.call(
        repo.register_worker,
        worker_id="gpu-box-1",
        host="gpu-box",
        pid=1,
        device="cuda:1 (NVIDIA H200, 139 GiB)",
        status="idle",
    )
    run_id = runs.submit_run(spec=TINY_MLP, dataset="digits", config={**FAST, "device": "cuda:1"})
    assert runs.get_run(run_id).status == "queued"
    with pytest.raises(SettingsError, match="live workers have: cuda:1"):
        runs.submit_run(spec=TINY_MLP, dataset="digits", config={**FAST, "device": "cuda:2"})


def test_regression_on_targets_in_the_thousands_trains_and_reports_mae_in_their_units(tmp_path):
    import csv

    generator = torch.Generator().manual_seed(0)
    features = torch.rand(400, 3, generator=generator)
    prices = 2000 + 800 * features[:, 0] - 500 * features[:, 1] + 5 * torch.randn(400)
    path = tmp_path / "houses.csv"
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["rooms", "age", "noise", "price"])
        writer.writerows([*f.tolist(), float(p)] for f, p in zip(features, prices, strict=True))
    spec = {"name": "mlp", "layers": [{"type": "Linear", "out_features": 32}, {"type": "ReLU"},
                                      {"type": "Linear"}]}  # fmt: skip
    result = runs.train_run_foreground(spec=spec, dataset=f"csv:{path}", config={"epochs": 30})
    assert result["status"] == "completed", result["error"]
    metrics = runs.get_run(result["run_id"]).result["metrics"]
    assert metrics["test_r2"] > 0.9
    model, dataset, _ = runs.load_run_model(result["run_id"])
    with torch.no_grad():
        predicted = dataset.denormalize_target(model(dataset.test.x).squeeze(-1))
    truth = dataset.denormalize_target(dataset.test.y)
    assert metrics["test_mae"] == pytest.approx(float((predicted - truth).abs().mean()), rel=1e-3)
    assert metrics["test_mae"] < 60  # in dollars, against prices of about 1,500 to 2,800
