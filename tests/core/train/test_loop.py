"""The loop: it learns, records in batches, fails plainly, and is deterministic."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from core.train import Callback, MetricRecord, TrainConfig, fit, seed_everything
from tests.core.train.stand_ins import (
    NaNAfter,
    blobs,
    digits,
    linear_regression,
    mlp,
    small_cnn,
)


class Recorder(Callback):
    def __init__(self) -> None:
        self.batches: list[list[MetricRecord]] = []
        self.checkpoints: list[tuple[int, int, dict]] = []
        self.started: list[dict] = []

    def on_start(self, **kwargs) -> None:
        self.started.append(kwargs)

    def on_metrics(self, records: list[MetricRecord]) -> None:
        self.batches.append(list(records))

    def on_checkpoint(self, state, *, epoch, step, metrics) -> None:
        self.checkpoints.append((epoch, step, dict(metrics)))

    @property
    def records(self) -> list[MetricRecord]:
        return [record for batch in self.batches for record in batch]

    def values(self, name: str) -> list[tuple[int, float]]:
        return [(r.step, r.value) for r in self.records if r.name == name]


def test_a_small_cnn_learns_digits():
    dataset = digits()
    seed_everything(0)
    recorder = Recorder()
    config = TrainConfig(epochs=8, device="cpu")
    result = fit(small_cnn(), dataset, config, callbacks=[recorder], checkpoint_every_s=0)
    assert result.status == "completed", result.error
    assert result.metrics["test_accuracy"] > 0.9, result.metrics
    assert result.steps == 8 * 21 and result.epochs == 8  # 1294 samples in batches of 64
    assert len(result.confusion_matrix) == 10
    assert sum(map(sum, result.confusion_matrix)) == len(dataset.test)
    assert result.best_val_accuracy == max(v for _, v in recorder.values("val_accuracy"))
    assert [epoch for epoch, _, _ in recorder.checkpoints] == list(range(1, 9))


def test_metrics_are_emitted_in_batches_with_unique_steps():
    dataset = blobs(n=600)
    recorder = Recorder()
    config = TrainConfig(epochs=3, batch_size=16, log_every=10, device="cpu")
    result = fit(mlp(), dataset, config, callbacks=[recorder])
    per_epoch = 420 // 16 + 1  # 27 batches, the last one of 4 samples
    assert result.steps == result.total_steps == 3 * per_epoch
    assert len(recorder.batches) < result.steps / 5
    names = {r.name for r in recorder.records}
    assert names == {
        "train_loss",
        "lr",
        "samples_per_s",
        "val_loss",
        "val_accuracy",
        "test_loss",
        "test_accuracy",
    }
    pairs = [(r.name, r.step) for r in recorder.records]
    assert len(pairs) == len(set(pairs)), "a (name, step) was recorded twice"
    # every log_every steps plus each epoch end
    assert [s for s, _ in recorder.values("train_loss")] == [
        10,
        20,
        27,
        30,
        40,
        50,
        54,
        60,
        70,
        80,
        81,
    ]
    assert [s for s, _ in recorder.values("val_loss")] == [27, 54, 81]
    assert [r.epoch for r in recorder.records if r.name == "train_loss"] == [
        1,
        1,
        1,
        2,
        2,
        2,
        2,
        3,
        3,
        3,
        3,
    ]
    assert recorder.started == [{"total_steps": 81, "start_step": 0, "epoch": 1}]
    assert set(result.metrics) == names - {"samples_per_s"}


def test_a_run_of_steps_validates_at_each_epoch_end_and_at_the_end():
    recorder = Recorder()
    config = TrainConfig(steps=40, epochs=None, batch_size=16, log_every=100, device="cpu")
    dataset = blobs(n=400)  # 280 train: 18 steps per epoch
    result = fit(mlp(), dataset, config, callbacks=[recorder], checkpoint_every_s=0)
    assert result.status == "completed" and result.steps == 40 and result.epochs == 3
    assert [s for s, _ in recorder.values("val_loss")] == [18, 36, 40]
    assert [(e, s) for e, s, _ in recorder.checkpoints] == [(1, 18), (2, 36), (2, 40)]
    assert [s for s, _ in recorder.values("test_accuracy")] == [40]


def test_regression_uses_mse_and_reports_mae_and_r2():
    seed_everything(0)
    model = nn.Linear(5, 1)
    config = TrainConfig(epochs=30, batch_size=32, lr=0.05, device="cpu")
    result = fit(model, linear_regression(), config)
    assert result.status == "completed", result.error
    assert result.confusion_matrix is None and result.best_val_accuracy is None
    assert "val_accuracy" not in result.metrics and "test_accuracy" not in result.metrics
    assert result.metrics["test_r2"] > 0.95
    assert result.metrics["test_mae"] < 0.2
    assert result.metrics["test_loss"] < 0.05  # the noise variance is 0.01


class BagOfTokens(nn.Module):
    def __init__(self, vocabulary: int, classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary, 8)
        self.head = nn.Linear(8, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(tokens).mean(dim=1))  # (batch, time) -> (batch, classes)


def test_token_id_inputs_train_like_any_other():
    generator = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (300,), generator=generator)
    x = torch.randint(2, 20, (300, 12), generator=generator)
    x[:, 0] = 20 + y  # the first token gives the class away
    from tests.core.train.stand_ins import Split, StandInDataset

    text = StandInDataset(
        "classification", 2, Split(x[:200], y[:200]), Split(x[200:250], y[200:250]),
        Split(x[250:], y[250:]),
    )  # fmt: skip
    result = fit(BagOfTokens(22, 2), text, TrainConfig(epochs=15, lr=0.05, device="cpu"))
    assert result.status == "completed" and result.metrics["test_accuracy"] > 0.9


def test_same_seed_same_result_and_another_seed_differs():
    def run(seed: int):
        seed_everything(seed)
        model = mlp(dropout=0.2)
        config = TrainConfig(epochs=3, batch_size=16, seed=seed, device="cpu")
        return model, fit(model, blobs(), config)

    first_model, first = run(1)
    second_model, second = run(1)
    other_model, _ = run(2)
    for a, b in zip(first_model.parameters(), second_model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert first.metrics == second.metrics
    assert not torch.equal(next(first_model.parameters()), next(other_model.parameters()))


class NaNFromStep(Callback):
    pass


def test_a_nan_loss_fails_the_run_with_the_step_and_no_checkpoint_after_it():
    recorder = Recorder()
    model = NaNAfter(mlp(), after=7)  # 179 train samples / 64: 3 steps per epoch
    config = TrainConfig(epochs=10, lr=0.5, device="cpu")
    result = fit(model, blobs(), config, callbacks=[recorder], checkpoint_every_s=0)
    assert result.status == "failed"
    assert result.error.startswith("training diverged at step 7 (epoch 3): the loss became NaN.")
    assert "lower learning rate (now 0.5)" in result.error
    assert [step for _, step, _ in recorder.checkpoints] == [3, 6]
    assert all(r.step < 7 for r in recorder.records)


def test_a_huge_learning_rate_diverges_and_fails():
    seed_everything(0)
    config = TrainConfig(epochs=50, optimizer="sgd", lr=1e6, batch_size=32, device="cpu")
    result = fit(nn.Linear(5, 1), linear_regression(), config)
    assert result.status == "failed" and "training diverged at step" in result.error


class ConstantWhenEvaluated(nn.Module):
    """Learns in training, but always predicts the same in eval: val loss never improves."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return out if self.training else torch.zeros_like(out)


def test_early_stopping_completes_with_a_note():
    recorder = Recorder()
    config = TrainConfig(epochs=10, early_stopping_patience=2, device="cpu")
    result = fit(ConstantWhenEvaluated(), blobs(), config, callbacks=[recorder])
    assert result.status == "completed" and result.stopped_early
    assert result.epochs == 3 and recorder.checkpoints[-1][:2] == (3, 9)  # the stop saves
    assert [s for s, _ in recorder.values("val_loss")] == [3, 6, 9]  # patience counts epochs
    assert "test_accuracy" in result.metrics


class RaisesOutOfMemory(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner, self.calls = mlp(), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(x)


def test_out_of_memory_fails_with_a_batch_size_that_may_fit():
    result = fit(RaisesOutOfMemory(), blobs(), TrainConfig(device="cpu"))
    assert result.status == "failed"
    assert "out of memory" in result.error and "batch size 64" in result.error
    assert "try batch size 32" in result.error


class StopAt(Callback):
    def __init__(self, step: int) -> None:
        self.step, self.asked = step, 0

    def control(self, *, step: int) -> str:
        self.asked += 1
        return "stop" if step == self.step else "continue"


class StopAtRecorded(StopAt, Recorder):
    def __init__(self, step: int) -> None:
        StopAt.__init__(self, step)
        Recorder.__init__(self)


def test_stop_between_steps_records_and_saves_what_was_trained():
    stopper = StopAtRecorded(5)
    config = TrainConfig(device="cpu", log_every=2)
    result = fit(mlp(), blobs(), config, callbacks=[stopper], checkpoint_every_s=3600)
    assert result.status == "cancelled" and result.steps == 5 and stopper.asked == 6
    assert [s for s, _ in stopper.values("train_loss")] == [2, 3, 4, 5]  # 3: the epoch end
    # 3 steps per epoch: the first epoch end and the stop are saved, nothing in between
    assert [c[:2] for c in stopper.checkpoints] == [(1, 3), (1, 5)]


class SlowBackgroundRecorder(Recorder):
    background = True

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.threads: set[str] = set()
        self.current = threading.current_thread

    def on_metrics(self, records: list[MetricRecord]) -> None:
        self.threads.add(self.current().name)
        time.sleep(0.002)  # a database write
        super().on_metrics(records)

    def on_checkpoint(self, state, *, epoch, step, metrics) -> None:
        self.threads.add(self.current().name)
        super().on_checkpoint(state, epoch=epoch, step=step, metrics=metrics)


def test_background_callbacks_get_everything_in_order_before_fit_returns():
    config = TrainConfig(epochs=3, batch_size=16, log_every=4, device="cpu")
    seed_everything(0)
    foreground = Recorder()
    fit(mlp(), blobs(), config, callbacks=[foreground], checkpoint_every_s=0)
    seed_everything(0)
    background = SlowBackgroundRecorder()
    fit(mlp(), blobs(), config, callbacks=[background], checkpoint_every_s=0)
    assert background.threads == {"studio-callbacks"}
    strip = [(r.name, r.step, r.value) for r in foreground.records if r.name != "samples_per_s"]
    assert strip == [
        (r.name, r.step, r.value) for r in background.records if r.name != "samples_per_s"
    ]
    assert [c[:2] for c in background.checkpoints] == [c[:2] for c in foreground.checkpoints]


class FailingWriter(Callback):
    background = True

    def on_metrics(self, records: list[MetricRecord]) -> None:
        raise OSError("database is gone")


def test_an_error_in_a_background_callback_reaches_the_caller():
    with pytest.raises(OSError, match="database is gone"):
        fit(
            mlp(),
            blobs(),
            TrainConfig(epochs=2, log_every=1, device="cpu"),
            callbacks=[FailingWriter()],
        )


class PauseAt(Recorder):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.pause_step = step

    def control(self, *, step: int) -> str:
        return "pause" if step == self.pause_step else "continue"


def test_a_pause_never_checkpoints_a_diverged_run():
    recorder = PauseAt(2)
    model = NaNAfter(mlp(), after=2)
    result = fit(model, blobs(), TrainConfig(log_every=25, device="cpu"), callbacks=[recorder])
    assert result.status == "failed" and "step 2 (epoch 1)" in result.error
    assert recorder.checkpoints == []


def test_checkpoints_follow_the_interval_not_every_epoch():
    """The first epoch end and the end are saved; in between only when the interval passed."""
    recorder = Recorder()
    config = TrainConfig(epochs=6, batch_size=16, device="cpu")  # 179 train: 12 steps per epoch
    result = fit(mlp(), blobs(), config, callbacks=[recorder], checkpoint_every_s=3600)
    assert result.status == "completed" and result.steps == 72
    assert [c[:2] for c in recorder.checkpoints] == [(1, 12), (6, 72)]
    assert [s for s, _ in recorder.values("val_loss")] == [12, 24, 36, 48, 60, 72]
    # a checkpoint carries the validation measured at its own step, for "best" model loading
    assert recorder.checkpoints[-1][2]["val_loss"] == recorder.values("val_loss")[-1][1]


def test_many_tiny_epochs_validate_about_fifty_times_and_record_every_log_interval():
    recorder = Recorder()
    # 280 train samples in batches of 140: 2 steps per epoch, 120 epochs
    config = TrainConfig(steps=240, epochs=None, batch_size=140, log_every=25, device="cpu")
    result = fit(mlp(), blobs(n=400), config, callbacks=[recorder], checkpoint_every_s=3600)
    assert result.status == "completed" and result.epochs == 120
    assert [s for s, _ in recorder.values("val_loss")] == list(range(6, 241, 6))  # every 3rd
    train_steps = [s for s, _ in recorder.values("train_loss")]
    assert train_steps == sorted(set(range(25, 241, 25)) | set(range(6, 241, 6)))
    assert [r.epoch for r in recorder.records if r.name == "val_loss"][:2] == [3, 6]


def test_early_stopping_validates_every_epoch_even_on_tiny_epochs():
    recorder = Recorder()
    config = TrainConfig(
        steps=240, epochs=None, batch_size=140, early_stopping_patience=100, device="cpu"
    )
    fit(mlp(), blobs(n=400), config, callbacks=[recorder])
    assert [s for s, _ in recorder.values("val_loss")] == list(range(2, 241, 2))
