"""Attention maps: each attention layer's weights for one sample, as their own view."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.explain.explanation import as_sample, input_facts, model_device, sample_modality
from core.explain.layers import find_attention_layers
from core.facts import ModelFacts, input_dtype_for


@dataclass
class AttentionMap:
    """One attention layer's weights for one sample: (heads, query time, key time)."""

    name: str
    weights: np.ndarray


def attention_maps(
    model: nn.Module, x: Tensor, *, dataset: Any | None = None, facts: ModelFacts | None = None
) -> list[AttentionMap]:
    """Each attention layer's weights for sample `x` (empty when the model has none).

    Studio attention wrappers (`core.studio_layers.SelfAttention`) keep `last_attention` when
    their `need_weights` (or the model's `record_attention`) is set; plain
    nn.MultiheadAttention layers are asked for per-head weights through hooks.
    """
    layers = find_attention_layers(model)
    if not layers:
        return []
    device = model_device(model)
    facts = input_facts(model, dataset, facts)
    x = as_sample(torch.as_tensor(x), facts)
    inputs = x.unsqueeze(0).to(device, input_dtype_for(sample_modality(x, facts)))
    captured: dict[str, Tensor] = {}
    handles = []

    def force_weights(_module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    for name, module in layers:
        if isinstance(module, nn.MultiheadAttention):
            handles.append(module.register_forward_pre_hook(force_weights, with_kwargs=True))
            handles.append(
                module.register_forward_hook(
                    lambda _m, _a, output, name=name: captured.__setitem__(name, output[1])
                )
            )
    wrappers = [m for _, m in layers if hasattr(m, "need_weights")]
    asked = [m.need_weights for m in wrappers]
    previous = getattr(model, "record_attention", None)
    was_training = model.training
    maps = []
    try:
        model.record_attention = True  # SpecModel: switches its SelfAttention layers on
        for wrapper in wrappers:
            wrapper.need_weights = True
        model.eval()
        # grad stays on: PyTorch's fused inference path skips the hooks under no_grad
        model(inputs)
        for name, module in layers:
            weights = captured.get(name, getattr(module, "last_attention", None))
            if weights is None:
                continue
            weights = weights.detach().float().cpu()[0]  # first (only) sample
            if weights.dim() == 2:  # heads averaged: one map
                weights = weights.unsqueeze(0)
            maps.append(AttentionMap(name=name, weights=weights.numpy()))
    finally:
        for handle in handles:
            handle.remove()
        if previous is None:
            del model.record_attention
        else:
            model.record_attention = previous
        for wrapper, was_asked in zip(wrappers, asked, strict=True):
            wrapper.need_weights = was_asked
        model.train(was_training)
    return maps
