"""Captum attribution methods behind one call shape.

`compute_attributions(model, inputs, method=..., targets=..., baselines=...)` takes a batch of
inputs (batch, *sample_shape) and returns attributions of the same shape, whatever the method.
Images and signals are attributed pixel by pixel / step by step; text (int64 token ids) is
attributed token by token through the model's Embedding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import (
    GradientShap,
    IntegratedGradients,
    LayerAttribution,
    LayerGradCam,
    LayerGradientXActivation,
    LayerIntegratedGradients,
    Occlusion,
    Saliency,
)
from torch import Tensor, nn

from core.errors import ExplainError
from core.explain import METHODS, TEXT_METHODS
from core.explain.layers import find_embedding, find_last_conv

NO_CONV_MESSAGE = (
    "Grad-CAM needs a convolution layer; this model has none — use saliency or integrated_gradients"
)


@dataclass
class Attribution:
    """Attributions for a batch, shaped like the inputs; the delta only where the method has one."""

    values: Tensor  # (batch, *sample_shape), float32
    convergence_delta: Tensor | None = None  # (batch,)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch and numpy (Captum draws from both) without disturbing anyone else's stream."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def is_text_input(inputs: Tensor) -> bool:
    return not torch.is_floating_point(inputs)


def occlusion_window(sample_shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sliding window and strides for Occlusion, chosen from the sample shape.

    Images (C, H, W): a square of about an eighth of the side (at least 2), all channels at
    once; signals (C, T): about a tenth of the length; flat features: one at a time.
    Strides are half a window so every position is covered by two windows per axis.
    """
    if len(sample_shape) == 3:
        channels, height, width = sample_shape
        side = min(max(2, min(height, width) // 8), height, width)
        step = max(1, side // 2)
        return (channels, side, side), (channels, step, step)
    if len(sample_shape) == 2:
        channels, length = sample_shape
        span = min(max(2, length // 10), length)
        return (channels, span), (channels, max(1, span // 2))
    if len(sample_shape) == 1:
        return (1,), (1,)
    raise ExplainError(
        f"occlusion needs a sample shaped (C, H, W), (C, T) or (F,); got {sample_shape}"
    )


def _text_attributions(
    model: nn.Module,
    inputs: Tensor,
    *,
    method: str,
    targets: Tensor,
    baselines: Tensor,
    n_steps: int,
    internal_batch_size: int,
) -> Attribution:
    embedding = find_embedding(model)
    if embedding is None:
        raise ExplainError(
            "this model takes integer token ids but has no Embedding layer to attribute to; "
            "text explanations need an Embedding as the first layer"
        )
    if method == "integrated_gradients":
        lig = LayerIntegratedGradients(model, embedding)
        values, delta = lig.attribute(
            inputs,
            baselines=baselines,
            target=targets,
            n_steps=n_steps,
            internal_batch_size=max(internal_batch_size, inputs.shape[0]),
            return_convergence_delta=True,
        )
        return Attribution(values.sum(dim=-1).detach().float(), delta.detach().float())
    # saliency for text: how strongly the output reacts to each token's embedding
    grads = LayerGradientXActivation(model, embedding, multiply_by_inputs=False).attribute(
        inputs, target=targets
    )  # (batch, time, embedding)
    return Attribution(grads.norm(dim=-1).detach().float())


def _grad_cam(model: nn.Module, inputs: Tensor, targets: Tensor) -> Attribution:
    conv = find_last_conv(model)
    if conv is None:
        raise ExplainError(NO_CONV_MESSAGE)
    cam = LayerGradCam(model, conv).attribute(inputs, target=targets, relu_attributions=True)
    spatial_dims = cam.dim() - 2  # (batch, 1, *spatial)
    if spatial_dims not in (1, 2) or inputs.dim() - 1 < spatial_dims:
        raise ExplainError(
            f"Grad-CAM cannot map a layer output shaped {tuple(cam.shape[1:])} back onto an "
            f"input shaped {tuple(inputs.shape[1:])}; use saliency or integrated_gradients"
        )
    size = tuple(inputs.shape[-spatial_dims:])
    mode = "bilinear" if spatial_dims == 2 else "linear"
    cam = LayerAttribution.interpolate(cam, size, interpolate_mode=mode).squeeze(1)
    if inputs.dim() - 1 > spatial_dims:  # one map, shared by every channel of the input
        cam = cam.unsqueeze(1).expand(inputs.shape)
    return Attribution(cam.detach().float().contiguous())


def compute_attributions(
    model: nn.Module,
    inputs: Tensor,
    *,
    method: str,
    targets: Tensor,
    baselines: Tensor,
    n_steps: int = 50,
    internal_batch_size: int = 64,
    shap_baselines: Tensor | None = None,
    shap_samples: int = 20,
    seed: int = 0,
) -> Attribution:
    """Attribute each input's `targets` logit to its features with `method`.

    inputs (batch, *sample_shape); targets (batch,) class indices; baselines shaped like inputs
    (the "nothing there" input: blank image, flat signal, pad tokens). `internal_batch_size`
    bounds how many samples (steps × inputs, or occluded copies) go through the model at once.
    """
    if method not in METHODS:
        raise ExplainError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    model.eval()
    baselines = baselines.expand_as(inputs).contiguous()
    # only Gradient SHAP draws random numbers; cuDNN's RNN kernels refuse backward in eval mode
    random_draws = seeded(seed) if method == "gradient_shap" else contextlib.nullcontext()
    no_cudnn = (
        torch.backends.cudnn.flags(enabled=False) if inputs.is_cuda else contextlib.nullcontext()
    )
    with random_draws, no_cudnn:
        if is_text_input(inputs):
            if method == "grad_cam":
                return _grad_cam(model, inputs, targets)
            if method not in TEXT_METHODS:
                raise ExplainError(
                    f"{method} is not available for text models; use integrated_gradients, "
                    "saliency or grad_cam (models with a convolution)"
                )
            return _text_attributions(
                model,
                inputs,
                method=method,
                targets=targets,
                baselines=baselines,
                n_steps=n_steps,
                internal_batch_size=internal_batch_size,
            )
        if method == "saliency":
            inputs = inputs.detach().requires_grad_()  # Saliency warns when it has to do this
            values = Saliency(model).attribute(inputs, target=targets, abs=True)
            return Attribution(values.detach().float())
        if method == "integrated_gradients":
            values, delta = IntegratedGradients(model).attribute(
                inputs,
                baselines=baselines,
                target=targets,
                n_steps=n_steps,
                internal_batch_size=max(internal_batch_size, inputs.shape[0]),
                return_convergence_delta=True,
            )
            return Attribution(values.detach().float(), delta.detach().float())
        if method == "gradient_shap":
            distribution = shap_baselines
            if distribution is None:  # "nothing there", jittered so the expectation is smooth
                blank = baselines[:1]
                distribution = blank + 0.1 * torch.randn(
                    (16, *blank.shape[1:]), device=blank.device
                )
            values = GradientShap(model).attribute(
                inputs, baselines=distribution, n_samples=shap_samples, target=targets
            )
            return Attribution(values.detach().float())
        if method == "occlusion":
            window, strides = occlusion_window(tuple(inputs.shape[1:]))
            values = Occlusion(model).attribute(
                inputs,
                sliding_window_shapes=window,
                strides=strides,
                baselines=baselines,
                target=targets,
                perturbations_per_eval=max(1, internal_batch_size // inputs.shape[0]),
            )
            return Attribution(values.detach().float())
        return _grad_cam(model, inputs, targets)
