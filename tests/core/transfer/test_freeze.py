"""Frozen blocks and the fine-tune schedule, through the real training loop on digits."""

from __future__ import annotations

import pytest
import torch

from core.builder import build_model
from core.data import load_dataset
from core.errors import SettingsError, SpecError
from core.spec import validate_spec
from core.train import TrainConfig, fit
from core.train.callbacks import Callback
from core.train.optim import build_optimizer

BODY_FROZEN = {
    "name": "frozen-body",
    "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "frozen": True},
        {"type": "BatchNorm2d", "frozen": True},
        {"type": "ReLU"},
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "BatchNorm2d"},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Linear"},
    ],
}


class KeepStates(Callback):
    """The model and optimizer state at each checkpoint (every epoch end here)."""

    def __init__(self) -> None:
        self.states: list[dict] = []

    def on_checkpoint(self, state, *, epoch, step, metrics) -> None:
        self.states.append(state)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_frozen_blocks_stay_bit_identical_after_training_bn_statistics_included():
    data = load_dataset("digits")
    model = build_model(BODY_FROZEN, data.facts)
    before = snapshot(model)
    config = TrainConfig(epochs=2, device="cpu", optimizer="adamw")  # weight decay would move them
    frozen = [p for p in model.conv1.parameters()] + [p for p in model.bn1.parameters()]
    trained = build_optimizer(model.parameters(), config).param_groups[0]["params"]
    assert not any(p is q for p in frozen for q in trained)  # not given to the optimizer
    result = fit(model, data, config, checkpoint_every_s=0)
    assert result.status == "completed", result.error
    after = model.state_dict()
    for name in (
        "conv1.weight",
        "conv1.bias",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
    ):
        assert torch.equal(after[name], before[name]), name
    assert not torch.equal(after["conv2.weight"], before["conv2.weight"])
    assert not torch.equal(after["bn2.running_mean"], before["bn2.running_mean"])
    assert all(not p.requires_grad for p in frozen)
    model.train()
    assert not model.bn1.training and model.bn2.training


def test_frozen_must_be_true_or_false_and_is_kept_by_validation():
    spec = {"name": "x", "input_shape": [1, 8, 8], "layers": [{"type": "Flatten", "frozen": "yes"}]}
    with pytest.raises(SpecError, match='layer 0 .*"frozen" must be true or false, not "yes"'):
        validate_spec(spec)
    kept = validate_spec(BODY_FROZEN)
    assert [layer.get("frozen") for layer in kept["layers"][:3]] == [True, True, None]


def test_freeze_epochs_trains_the_head_alone_then_everything_at_a_lower_body_lr():
    data = load_dataset("digits")
    spec = {
        **BODY_FROZEN,
        "layers": [
            {k: v for k, v in layer.items() if k != "frozen"} for layer in BODY_FROZEN["layers"]
        ],
    }
    model = build_model(spec, data.facts)
    before = snapshot(model)
    config = TrainConfig(epochs=2, device="cpu", freeze_epochs=1, body_lr_factor=0.1)
    states = KeepStates()
    result = fit(model, data, config, callbacks=[states], checkpoint_every_s=0)
    assert result.status == "completed", result.error
    first, second = (state["model"] for state in states.states)
    for name in ("conv1.weight", "conv2.weight", "bn2.running_mean"):
        assert torch.equal(first[name], before[name]), name  # epoch 1: body frozen, BN eval
        assert not torch.equal(second[name], first[name]), name  # epoch 2: it trains
    assert not torch.equal(first["fc1.weight"], before["fc1.weight"])
    groups = states.states[-1]["optimizer"]["param_groups"]
    assert [group["lr"] for group in groups] == [pytest.approx(1e-3), pytest.approx(1e-4)]


def test_freeze_epochs_needs_a_body_to_freeze():
    data = load_dataset("digits")
    model = build_model(
        {"name": "t", "layers": [{"type": "Flatten"}, {"type": "Linear"}]}, data.facts
    )
    with pytest.raises(SettingsError, match="freeze_epochs=1 has nothing to freeze"):
        fit(model, data, TrainConfig(epochs=1, device="cpu", freeze_epochs=1))
