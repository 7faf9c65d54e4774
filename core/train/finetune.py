"""The fine-tune schedule: train the head alone for `freeze_epochs`, then everything, with the
body's learning rate multiplied by `body_lr_factor` (fastai's `fine_tune`).

The head is the model's last block with weights (the classifier); the body is every other
block with weights, except those the spec marks "frozen", which never train. The body is in the
optimizer from the start, in a param group of its own (lr x body_lr_factor); while it is frozen
its parameters get no gradient (so the optimizer skips them) and its BatchNorm layers stay in
eval mode. Which phase a step is in follows from its epoch alone, so a resumed run is in the
same phase as the run it continues.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from core.errors import SettingsError
from core.train.config import TrainConfig


@dataclass
class FineTune:
    """The body's blocks and parameters and the schedule over them (a no-op by default)."""

    freeze_epochs: int = 0
    body_lr_factor: float = 1.0
    body: list[nn.Module] = field(default_factory=list)
    body_params: list[nn.Parameter] = field(default_factory=list)

    @classmethod
    def prepare(cls, model: nn.Module, config: TrainConfig) -> FineTune:
        """The schedule `config` asks for on `model` (SettingsError when it cannot apply)."""
        if config.freeze_epochs == 0 and config.body_lr_factor == 1.0:
            return cls()
        head, body = split_head(model)
        if head is None:
            raise SettingsError(
                "freeze_epochs and body_lr_factor need a model with weights in its last block "
                "(a Linear head); this model has none"
            )
        frozen = set(getattr(model, "frozen_blocks", ()))
        modules = [model.get_submodule(name) for name in body if name not in frozen]
        params = [p for module in modules for p in module.parameters() if p.requires_grad]
        if config.freeze_epochs and not params:
            raise SettingsError(
                f"freeze_epochs={config.freeze_epochs} has nothing to freeze: every block "
                f"before the head ({head}) has no weights or is frozen already"
            )
        return cls(config.freeze_epochs, config.body_lr_factor, modules, params)

    def split_lr(self, optimizer: torch.optim.Optimizer) -> None:
        """Move the body's parameters into a param group of their own at lr x factor."""
        if not self.body_params or self.body_lr_factor == 1.0 and not self.freeze_epochs:
            return
        group = optimizer.param_groups[0]
        body_ids = {id(p) for p in self.body_params}
        group["params"] = [p for p in group["params"] if id(p) not in body_ids]
        optimizer.add_param_group(
            {"params": list(self.body_params), "lr": group["lr"] * self.body_lr_factor}
        )

    def at_epoch(self, epoch: int) -> None:
        """Freeze or unfreeze the body for `epoch` (0-based); call it after `model.train()`."""
        if not self.freeze_epochs:
            return
        trainable = epoch >= self.freeze_epochs
        for param in self.body_params:
            param.requires_grad_(trainable)
        if not trainable:
            for module in self.body:
                module.eval()


def split_head(model: nn.Module) -> tuple[str | None, list[str]]:
    """(head block, body blocks with weights) of a spec model, in execution order; the head is
    the last block that has parameters. (None, []) for a model without a spec plan."""
    plan = getattr(model, "_plan", None)
    if not plan:
        return None, []
    with_weights = [
        name
        for name, _sources, _tuple in plan
        if any(True for _ in model.get_submodule(name).parameters())
    ]
    if not with_weights:
        return None, []
    return with_weights[-1], with_weights[:-1]
