"""Optimizers and learning-rate schedulers built from a TrainConfig."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from core.train.config import TrainConfig

Scheduler = torch.optim.lr_scheduler.LRScheduler


def build_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The configured optimizer over `params` (only those that require gradients)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        from core.errors import TrainingError

        raise TrainingError("the model has no trainable parameters (all are frozen or none exist)")
    setting = config.effective  # the value given, else this optimizer's default
    common = {"lr": config.lr, "weight_decay": setting("weight_decay")}
    # one fused kernel per step instead of a Python loop over the parameters: 3-4x faster
    # optimizer steps on CPU and CUDA, same update rule, still deterministic
    fused = {"fused": True} if _can_fuse(params) else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            momentum=setting("momentum"),
            nesterov=setting("nesterov"),
            **common,
            **fused,
        )
    if config.optimizer in ("adam", "adamw"):
        adam = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        return adam(params, betas=setting("betas"), eps=setting("eps"), **common, **fused)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params,
            alpha=setting("alpha"),
            momentum=setting("momentum"),
            eps=setting("eps"),
            **common,
        )
    if config.optimizer == "adagrad":
        return torch.optim.Adagrad(params, eps=setting("eps"), **common, **fused)
    raise ValueError(f"unknown optimizer {config.optimizer!r}")  # TrainConfig refuses it first


def _can_fuse(params: list[nn.Parameter]) -> bool:
    """Fused kernels exist for floating-point parameters on CPU and CUDA, all on one device."""
    devices = {p.device for p in params}
    return (
        len(devices) == 1
        and next(iter(devices)).type in ("cpu", "cuda")
        and all(p.is_floating_point() for p in params)
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    *,
    steps_per_epoch: int,
    total_steps: int,
) -> Scheduler | None:
    """The configured schedule, stepped once after every optimizer step (None for 'none')."""
    if config.scheduler == "none":
        return None
    if config.scheduler == "step":
        # step_size is counted in epochs, the unit people think in
        return torch.optim.lr_scheduler.StepLR(
            optimizer,
            step_size=config.effective("step_size") * steps_per_epoch,
            gamma=config.effective("gamma"),
        )
    if config.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if config.scheduler == "onecycle":
        # momentum cycling only where the optimizer has a momentum to cycle
        cycle_momentum = config.optimizer in ("adam", "adamw") or bool(
            config.optimizer in ("sgd", "rmsprop") and config.effective("momentum")
        )
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.max_lr or config.lr,
            total_steps=max(1, total_steps),
            cycle_momentum=cycle_momentum,
        )
    raise ValueError(f"unknown scheduler {config.scheduler!r}")
