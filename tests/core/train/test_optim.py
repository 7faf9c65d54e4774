"""Every optimizer and scheduler builds from the settings and takes steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.train.config import OPTIMIZERS, SCHEDULERS, TrainConfig
from core.train.optim import build_optimizer, build_scheduler


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_and_scheduler_builds_and_steps(optimizer, scheduler):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    before = model.weight.detach().clone()
    config = TrainConfig(optimizer=optimizer, scheduler=scheduler, lr=0.01, epochs=2)
    opt = build_optimizer(model.parameters(), config)
    sched = build_scheduler(opt, config, steps_per_epoch=5, total_steps=10)
    assert (sched is None) == (scheduler == "none")
    for _ in range(10):
        loss = model(torch.randn(8, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    assert not torch.equal(model.weight, before)


def test_optimizer_parameters_reach_torch():
    model = nn.Linear(3, 2)
    sgd = build_optimizer(
        model.parameters(), TrainConfig(optimizer="sgd", momentum=0.8, nesterov=True)
    )
    assert sgd.defaults["momentum"] == 0.8 and sgd.defaults["nesterov"] is True
    adam = build_optimizer(model.parameters(), TrainConfig(betas=(0.8, 0.9), eps=1e-6))
    assert adam.defaults["betas"] == (0.8, 0.9) and adam.defaults["eps"] == 1e-6
    adamw = build_optimizer(model.parameters(), TrainConfig(optimizer="adamw"))
    assert adamw.defaults["weight_decay"] == 0.01  # AdamW keeps its own default
    rms = build_optimizer(model.parameters(), TrainConfig(optimizer="rmsprop", alpha=0.9))
    assert rms.defaults["alpha"] == 0.9 and rms.defaults["weight_decay"] == 0.0
    assert rms.defaults["momentum"] == 0.0  # RMSprop's own default when momentum is unset
    rms = build_optimizer(model.parameters(), TrainConfig(optimizer="rmsprop", momentum=0.5))
    assert rms.defaults["momentum"] == 0.5  # once silently dropped; RMSprop reads it
    sgd = build_optimizer(model.parameters(), TrainConfig(optimizer="sgd"))
    assert sgd.defaults["momentum"] == 0.9 and sgd.defaults["nesterov"] is False


def test_frozen_parameters_are_left_out():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))
    model[0].requires_grad_(False)
    opt = build_optimizer(model.parameters(), TrainConfig())
    assert sum(len(group["params"]) for group in opt.param_groups) == 2


def test_step_schedule_counts_epochs_and_onecycle_peaks_at_lr():
    model = nn.Linear(3, 2)
    config = TrainConfig(optimizer="sgd", lr=1.0, scheduler="step", step_size=2, gamma=0.5)
    opt = build_optimizer(model.parameters(), config)
    sched = build_scheduler(opt, config, steps_per_epoch=3, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:6] == [1.0] * 6 and lrs[6:12] == [0.5] * 6

    config = TrainConfig(lr=0.2, scheduler="onecycle")
    opt = build_optimizer(model.parameters(), config)
    sched = build_scheduler(opt, config, steps_per_epoch=10, total_steps=100)
    peak = 0.0
    for _ in range(100):
        peak = max(peak, opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert peak == pytest.approx(0.2, rel=1e-3)
