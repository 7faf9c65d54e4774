"""Removing hidden units from recurrent layers (RNN, LSTM, GRU), for Torch-Pruning.

Torch-Pruning's own LSTM pruner handles one unidirectional layer only and has no GRU or RNN
pruner; this one handles all three, stacked or not: a hidden unit is one row in each gate's
block of the weights (1 gate for RNN, 3 for GRU, 4 for LSTM), one column of the recurrent
weights, and one column of the next stacked layer's input weights. Bidirectional layers can
take fewer inputs but keep their hidden size (see `recurrent_limit`).
"""

from __future__ import annotations

import torch
import torch_pruning as tp
from torch import nn

GATES = {nn.RNN: 1, nn.GRU: 3, nn.LSTM: 4}
RECURRENT_TYPES = tuple(GATES)


def recurrent_limit(layer: nn.RNNBase) -> str | None:
    """Why the hidden units of this layer cannot be removed, or None when they can."""
    if layer.bidirectional:
        return (
            "it is bidirectional: both directions share hidden_size, so a unit would have to "
            "be removed from both halves of its output at once, which Torch-Pruning's "
            "dependency graph cannot express; its inputs are still pruned"
        )
    if getattr(layer, "proj_size", 0):
        return "it projects its hidden state (proj_size), which this pruner does not handle"
    return None


def _kept(size: int, idxs: list[int]) -> torch.Tensor:
    return torch.tensor(sorted(set(range(size)) - set(int(i) for i in idxs)), dtype=torch.long)


class RecurrentPruner(tp.pruner.function.BasePruningFunc):
    """Prunes hidden units (out channels) and input features (in channels) of RNN/LSTM/GRU."""

    def prune_out_channels(self, layer: nn.RNNBase, idxs: list[int]) -> nn.RNNBase:
        hidden = layer.hidden_size
        keep = _kept(hidden, idxs)
        gates = GATES[type(layer)]
        gate_keep = torch.cat([keep + gate * hidden for gate in range(gates)])
        for k in range(layer.num_layers):
            names = [f"weight_ih_l{k}", f"weight_hh_l{k}"]
            names += [f"bias_ih_l{k}", f"bias_hh_l{k}"] if layer.bias else []
            for name in names:
                value = self._prune_parameter_and_grad(getattr(layer, name), gate_keep, 0)
                if name.startswith("weight_hh") or (name.startswith("weight_ih") and k > 0):
                    value = self._prune_parameter_and_grad(value, keep, 1)
                setattr(layer, name, value)
        layer.hidden_size = len(keep)
        layer._init_flat_weights()
        return layer

    def prune_in_channels(self, layer: nn.RNNBase, idxs: list[int]) -> nn.RNNBase:
        keep = _kept(layer.input_size, idxs)
        for suffix in ("", "_reverse") if layer.bidirectional else ("",):
            name = f"weight_ih_l0{suffix}"
            setattr(layer, name, self._prune_parameter_and_grad(getattr(layer, name), keep, 1))
        layer.input_size = len(keep)
        layer._init_flat_weights()
        return layer

    def get_out_channels(self, layer: nn.RNNBase) -> int:
        return layer.hidden_size * (2 if layer.bidirectional else 1)

    def get_in_channels(self, layer: nn.RNNBase) -> int:
        return layer.input_size


class _Opaque(torch.autograd.Function):
    """A recurrent layer as one node of the autograd graph, for tracing only: PyTorch's CPU
    RNNs unfold into hundreds of small ops (gate splits, per-step cats) that Torch-Pruning
    would read as channel couplings inside the layer."""

    @staticmethod
    def forward(ctx, module, x, *params):  # noqa: ARG004 - params only link the graph
        output, state = module.__class__.forward(module, x)
        return output, state

    @staticmethod
    def backward(ctx, *grads):  # pragma: no cover - tracing never runs backward
        raise RuntimeError("an opaque recurrent layer is for dependency tracing only")


class opaque_recurrent:  # noqa: N801 - used as a context manager, reads like a function
    """Within this block, each recurrent layer of `model` is one autograd node (see `_Opaque`)."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = [m for m in model.modules() if isinstance(m, RECURRENT_TYPES)]

    def __enter__(self) -> None:
        for layer in self.layers:
            layer.forward = _opaque_forward(layer)

    def __exit__(self, *exc: object) -> None:
        for layer in self.layers:
            del layer.forward


def _opaque_forward(layer: nn.RNNBase):
    def forward(x, hx=None):
        return _Opaque.apply(layer, x, *layer.parameters())

    return forward
