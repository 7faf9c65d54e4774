"""The frozen-feature cache (Teachable Machine's trick): when every block before the head is
frozen, the body's output never changes, so it is computed once per split and only the head
trains, on those features.

The studio has no data augmentation, so a frozen body always sees the same inputs. The cached
model shares its blocks with the full model under the same names: its state dict, and so every
checkpoint, is the whole model, which Explain, Export and Compress load as usual.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from core.train.config import TrainConfig

FEATURE_BATCH = 256  # samples per forward pass of the body while caching


@dataclass(frozen=True)
class CachePlan:
    """Where the model is cut: the value the head reads, and the steps from there on."""

    cut: str  # name of the value whose features are cached
    steps: tuple[tuple[str, tuple[str, ...], bool], ...]  # the plan after the cut
    output: str


def cache_plan(model: nn.Module, config: TrainConfig) -> CachePlan | None:
    """The cut when the cache applies: a spec model whose blocks before its last one read one
    value, are all frozen (or have no weights and no randomness), with weights in at least one,
    and no freeze schedule runs."""
    plan = getattr(model, "_plan", None)
    if not plan or len(plan) < 2 or config.freeze_epochs:
        return None
    frozen = set(getattr(model, "frozen_blocks", ()))
    head_name, head_sources, _ = plan[-1]
    if len(head_sources) != 1 or head_sources[0] == "input":
        return None
    saves_work = False  # a body without weights (a Flatten) costs nothing to run again
    for name, _sources, _tuple in plan[:-1]:
        module = model.get_submodule(name)
        has_weights = any(True for _ in module.parameters())
        random = any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules())
        if name not in frozen and (has_weights or random):
            return None
        saves_work = saves_work or has_weights
    return CachePlan(head_sources[0], (plan[-1],), model._output) if saves_work else None


class CachedFeatureModel(nn.Module):
    """Runs only the steps after the cut, on cached features; its modules (and state dict) are
    the full model's, so checkpoints hold the whole model."""

    def __init__(self, model: nn.Module, plan: CachePlan) -> None:
        super().__init__()
        object.__setattr__(self, "_modules", model._modules)  # the same blocks, same names
        object.__setattr__(self, "full_model", model)
        self.plan = plan
        self._plan = list(plan.steps)  # what runs here (the head): FineTune finds no body

    def train(self, mode: bool = True) -> CachedFeatureModel:
        self.full_model.train(mode)  # frozen blocks stay in eval mode (SpecModel.train)
        self.training = mode
        return self

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        values = {self.plan.cut: features}
        for name, sources, tuple_output in self.plan.steps:
            output = self._modules[name](*(values[s] for s in sources))
            values[name] = output[0] if tuple_output else output
        return values[self.plan.output]


def body_features(
    model: nn.Module, cut: str, x: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """The value `cut` for every sample of `x`, computed in eval mode in batches (on the CPU)."""
    captured: list[torch.Tensor] = []
    target = model.get_submodule(cut)
    handle = target.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    chunks = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), FEATURE_BATCH):
                captured.clear()
                model(x[start : start + FEATURE_BATCH].to(device))
                chunks.append(captured[-1].float().cpu())
    finally:
        handle.remove()
        model.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0)


def with_feature_cache(
    model: nn.Module, dataset: Any, config: TrainConfig
) -> tuple[nn.Module, Any, dict[str, Any] | None]:
    """(model to train, dataset to train on, what the cache did) — the model and dataset as
    given when the cache does not apply. Features are computed on the run's device."""
    plan = cache_plan(model, config)
    if plan is None:
        return model, dataset, None
    from core.train.devices import resolve_device

    device = resolve_device(config.device)
    started = time.perf_counter()
    model.to(device)
    splits = {}
    for name in ("train", "val", "test"):
        split = getattr(dataset, name)
        features = body_features(model, plan.cut, split.x, device)
        splits[name] = dataclasses.replace(split, x=features)
    model.to("cpu")
    cached = dataclasses.replace(dataset, **splits)
    note = {
        "cut": plan.cut,
        "feature_shape": list(splits["train"].x.shape[1:]),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return CachedFeatureModel(model, plan), cached, note
