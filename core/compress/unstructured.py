"""Unstructured pruning: the smallest weights of the whole model set to zero.

Global magnitude pruning with `torch.nn.utils.prune`: every weight matrix (convolutions,
linear and recurrent layers, attention projections, embeddings; not biases or norms) competes
in one ranking, the `ratio` with the smallest magnitude become zero, and the masks are made
permanent (`prune.remove`), so the model is a plain model again with the same shapes.
Zeros stored densely take the same memory and the same time: this alone does not make a model
faster on a CPU, it says how much of it could go.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.nn.utils import prune

from core.compress.structured import check_ratio

NOT_FASTER = (
    "Unstructured pruning zeroes weights but keeps every shape: stored densely, the model has "
    "the same size and runs no faster on a CPU; it shows how much could go (structured "
    "pruning removes it for real)."
)


@dataclass
class LayerSparsity:
    """The share of zero weights in one weight tensor after pruning."""

    name: str  # parameter name in the model, e.g. "conv1.weight"
    weights: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.weights if self.weights else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weights": self.weights,
            "zeros": self.zeros,
            "sparsity": self.sparsity,
        }


@dataclass
class UnstructuredResult:
    """The model with zeros in place (same spec, same shapes) and the sparsity per layer."""

    model: nn.Module
    ratio: float
    layers: list[LayerSparsity] = field(default_factory=list)

    @property
    def sparsity(self) -> float:
        """Zeros among all the weights that took part, which equals the ratio asked."""
        total = sum(layer.weights for layer in self.layers)
        return sum(layer.zeros for layer in self.layers) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "unstructured",
            "ratio": self.ratio,
            "sparsity": self.sparsity,
            "layers": [layer.to_dict() for layer in self.layers],
            "note": NOT_FASTER,
        }


def prunable_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(module, parameter name) of every weight matrix: parameters with two or more dims whose
    name says weight (biases, norms and learned positions stay as they are)."""
    found = []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if "weight" in name and parameter.dim() >= 2:
                found.append((module, name))
    return found


def prune_unstructured(model: nn.Module, ratio: float) -> UnstructuredResult:
    """Zero the `ratio` smallest-magnitude weights of a copy of `model`, ranked globally."""
    ratio = check_ratio(ratio)
    pruned = copy.deepcopy(model).eval()
    targets = prunable_weights(pruned)
    prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=ratio)
    for module, name in targets:
        prune.remove(module, name)  # the mask becomes the weight: a plain model again
        if isinstance(module, nn.RNNBase):
            module._init_flat_weights()  # the recurrent kernel reads its own list of weights
    names = {id(p): n for n, p in pruned.named_parameters()}
    layers = [
        LayerSparsity(
            names[id(getattr(module, name))],
            getattr(module, name).numel(),
            int((getattr(module, name) == 0).sum()),
        )
        for module, name in targets
    ]
    return UnstructuredResult(pruned, ratio, layers)
