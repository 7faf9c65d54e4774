"""Layers the studio offers beyond torch.nn, as plain modules.

Each class depends only on `torch`, `nn` and `math`: code export copies their source verbatim
into the generated file, so a built model and its exported code are the same classes.
Shapes exclude the batch dimension in arguments (`dims`, `shape`, `dim`), as in the spec.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Permute(nn.Module):
    """Reorders the dimensions after the batch: dims=(1, 0) makes (batch, 1, 40) (batch, 40, 1)."""

    def __init__(self, dims):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x):
        return x.permute(0, *(d + 1 for d in self.dims))

    def extra_repr(self):
        return f"dims={self.dims}"


class Reshape(nn.Module):
    """Gives each sample a new shape with the same number of values: shape=(40, 1)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], *self.shape)

    def extra_repr(self):
        return f"shape={self.shape}"


class SequencePool(nn.Module):
    """Summarizes a sequence (batch, time, features) into one vector (batch, features)."""

    def __init__(self, mode="last"):
        super().__init__()
        self.mode = mode  # "last": the final step, "mean" / "max": over all steps

    def forward(self, x):
        if self.mode == "last":
            return x[:, -1]
        if self.mode == "mean":
            return x.mean(dim=1)
        return x.amax(dim=1)

    def extra_repr(self):
        return f"mode={self.mode!r}"


class PositionalEncoding(nn.Module):
    """Adds each time step's position to its features, so attention can tell steps apart."""

    def __init__(self, d_model, max_len, kind="sinusoidal", dropout=0.0):
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.position = nn.Parameter(torch.randn(max_len, d_model) * 0.02)
        else:
            # the fixed sine/cosine table of "Attention Is All You Need"; not saved, recomputed
            step = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
            frequency = torch.exp(
                torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
            )
            table = torch.zeros(max_len, d_model)
            table[:, 0::2] = torch.sin(step * frequency)
            table[:, 1::2] = torch.cos(step * frequency)[:, : d_model // 2]
            self.register_buffer("position", table, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        # x: (batch, time, d_model)
        return self.dropout(x + self.position[: x.shape[1]])


class Add(nn.Module):
    """Adds its inputs element by element (they must have the same shape): residual blocks."""

    def forward(self, *inputs):
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class Concat(nn.Module):
    """Joins its inputs along one dimension (dim counts after the batch: 0 = channels)."""

    def __init__(self, dim=0):
        super().__init__()
        self.dim = dim

    def forward(self, *inputs):
        return torch.cat(inputs, dim=self.dim + 1)

    def extra_repr(self):
        return f"dim={self.dim}"


class SelfAttention(nn.Module):
    """Multi-head self-attention over a sequence (batch, time, features): each step looks at all.

    Set `need_weights = True` to keep the last forward's attention weights in `last_attention`
    (batch, heads, time, time), for explanations.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True):
        super().__init__()
        self.attention = nn.MultiheadAttention(
            embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=True
        )
        self.need_weights = False
        self.last_attention = None

    def forward(self, x):
        out, weights = self.attention(
            x, x, x, need_weights=self.need_weights, average_attn_weights=False
        )
        if self.need_weights:
            self.last_attention = weights.detach()
        return out


STUDIO_CLASSES = (Permute, Reshape, SequencePool, PositionalEncoding, Add, Concat, SelfAttention)
