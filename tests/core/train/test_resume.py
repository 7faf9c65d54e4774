"""Pause / resume and crash recovery give exactly the uninterrupted result (on CPU)."""

from __future__ import annotations

import pytest
import torch

from core.errors import TrainingError
from core.train import Callback, MetricRecord, TrainConfig, fit, seed_everything
from core.train.checkpoint import load_checkpoint, save_checkpoint
from tests.core.train.stand_ins import blobs, mlp

# dropout, momentum, a one-cycle schedule and gradient clipping: every piece of state matters
CONFIG = TrainConfig(
    epochs=4,
    batch_size=16,
    optimizer="sgd",
    lr=0.05,
    momentum=0.9,
    scheduler="onecycle",
    grad_clip=1.0,
    log_every=5,
    early_stopping_patience=10,
    seed=3,
    device="cpu",
)
DATASET = blobs(n=400)  # 280 train samples: 18 steps per epoch, 72 in all


class Capture(Callback):
    """Records metrics and checkpoint states; pauses once at `pause_at`."""

    def __init__(self, pause_at: int | None = None) -> None:
        self.pause_at = pause_at
        self.records: list[MetricRecord] = []
        self.states: list[dict] = []

    def on_metrics(self, records: list[MetricRecord]) -> None:
        self.records.extend(records)

    def on_checkpoint(self, state, *, epoch, step, metrics) -> None:
        assert state["step"] == step and state["epoch"] == epoch
        self.states.append(state)

    def control(self, *, step: int) -> str:
        return "pause" if step == self.pause_at else "continue"


def fresh_model() -> torch.nn.Module:
    seed_everything(CONFIG.seed)
    return mlp(dropout=0.3)


def comparable(records: list[MetricRecord]) -> list[tuple[str, int, int, float]]:
    """Records without the wall-clock speed, which differs from run to run."""
    return [(r.name, r.step, r.epoch, r.value) for r in records if r.name != "samples_per_s"]


@pytest.fixture(scope="module")
def uninterrupted():
    model = fresh_model()
    capture = Capture()
    result = fit(model, DATASET, CONFIG, callbacks=[capture], checkpoint_every_s=0)
    assert result.status == "completed" and result.steps == 72
    assert [state["step"] for state in capture.states] == [18, 36, 54, 72]
    return model, result, capture


def assert_same_as_uninterrupted(model, result, records, uninterrupted) -> None:
    expected_model, expected_result, expected_capture = uninterrupted
    for (name, a), (_, b) in zip(
        model.state_dict().items(), expected_model.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), f"{name} differs after resume"
    assert result.status == "completed"
    assert result.metrics == expected_result.metrics
    assert result.confusion_matrix == expected_result.confusion_matrix
    assert result.best_val_accuracy == expected_result.best_val_accuracy
    assert comparable(records) == comparable(expected_capture.records)


@pytest.mark.parametrize("pause_at", [7, 18, 41])  # mid-interval, an epoch boundary, mid-epoch
@pytest.mark.parametrize("through_file", [False, True])
def test_pause_then_resume_equals_uninterrupted(pause_at, through_file, uninterrupted, tmp_path):
    model = fresh_model()
    first = Capture(pause_at=pause_at)
    paused = fit(model, DATASET, CONFIG, callbacks=[first])
    assert paused.status == "paused" and paused.steps == pause_at
    state = first.states[-1]
    assert state["step"] == pause_at
    if through_file:
        state = load_checkpoint(save_checkpoint(tmp_path / "paused.pt", state))
    # a new process: a fresh model whose weights come only from the state
    torch.manual_seed(12345)
    resumed_model = mlp(dropout=0.3)
    second = Capture()
    result = fit(resumed_model, DATASET, CONFIG, callbacks=[second], resume=state)
    assert_same_as_uninterrupted(
        resumed_model, result, first.records + second.records, uninterrupted
    )


def test_resume_from_an_epoch_checkpoint_after_a_crash(uninterrupted, tmp_path):
    """The worker's case: records after the checkpoint are discarded, training resumes."""
    _, _, capture = uninterrupted
    state = capture.states[1]  # end of epoch 2
    assert (state["epoch"], state["step"], state["position"]) == (2, 36, 0)
    kept = [r for r in capture.records if r.step <= state["step"]]
    torch.manual_seed(999)
    model = mlp(dropout=0.3)
    second = Capture()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "epoch2.pt", state))
    result = fit(model, DATASET, CONFIG, callbacks=[second], resume=loaded)
    assert min(r.step for r in second.records) > state["step"]
    assert_same_as_uninterrupted(model, result, kept + second.records, uninterrupted)


def test_resume_from_the_last_checkpoint_only_tests(uninterrupted):
    model, expected, capture = uninterrupted
    again = Capture()
    result = fit(mlp(dropout=0.3), DATASET, CONFIG, callbacks=[again], resume=capture.states[-1])
    assert result.steps == 72 and result.metrics == expected.metrics
    assert {r.name for r in again.records} == {"test_loss", "test_accuracy"}


def test_resume_with_different_settings_is_refused(uninterrupted):
    state = uninterrupted[2].states[0]
    other = TrainConfig.from_dict({**CONFIG.to_dict(), "batch_size": 32})
    with pytest.raises(TrainingError, match="batch_size=16"):
        fit(mlp(dropout=0.3), DATASET, other, resume=state)


# 280 train samples in batches of 140: 2 steps per epoch, 60 epochs; validation every 2nd
TINY_EPOCHS = TrainConfig.from_dict(
    {**CONFIG.to_dict(), "epochs": 60, "batch_size": 140, "early_stopping_patience": None}
)


def test_resume_from_an_epoch_end_that_neither_validated_nor_recorded(tmp_path):
    """On tiny epochs a checkpoint can fall where nothing was recorded: the unrecorded losses
    travel in the state, and the resumed run records exactly what an uninterrupted one does."""
    model, whole = fresh_model(), Capture()
    expected = fit(model, DATASET, TINY_EPOCHS, callbacks=[whole], checkpoint_every_s=0)
    assert expected.steps == 120
    val_steps = [r.step for r in whole.records if r.name == "val_loss"]
    assert val_steps == list(range(4, 121, 4))
    [state] = [s for s in whole.states if s["step"] == 14]  # epoch 7: odd, and 14 % 5 != 0
    assert len(state["pending_losses"]) == 2  # steps 13, 14: 12 validated, 15 records
    kept = [r for r in whole.records if r.step <= 14]
    torch.manual_seed(7)
    resumed, second = mlp(dropout=0.3), Capture()
    loaded = load_checkpoint(save_checkpoint(tmp_path / "epoch7.pt", state))
    result = fit(resumed, DATASET, TINY_EPOCHS, callbacks=[second], resume=loaded)
    assert_same_as_uninterrupted(resumed, result, kept + second.records, (model, expected, whole))
