"""Layers for any model: fully connected, reshaping, activations and merges."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from torch import nn

from core.layers.registry import Construct, LayerContext, LayerProblem, ParamSpec, register
from core.layers.shapes import fmt, inferred_matches, step, what
from core.studio_layers import Add, Concat, Permute, Reshape

LINEAR_MAX_OUT = 1_000_000


@register(
    "Linear",
    family="Common",
    short="fc",
    inferred=("in_features",),
    params=(
        ParamSpec(
            "out_features",
            "int",
            None,
            1,
            LINEAR_MAX_OUT,
            nullable=True,
            help="How many numbers it outputs; leave empty on the last Linear to "
            "use the dataset's number of classes.",
        ),
        ParamSpec("bias", "bool", True, help="Learn an offset per output."),
    ),
    description="Combines all incoming numbers into new ones; the classic neural network layer.",
)
def linear(args: dict[str, Any], context: LayerContext) -> Construct:
    shape = context.shape
    if len(shape) >= 3:
        raise LayerProblem(
            f"it receives {what(shape)} but works on flat features or sequences; add "
            f"{step({'type': 'Flatten'})} before it (it would then receive {math.prod(shape)} features)"
        )
    inferred_matches(args, "in_features", shape[-1], "its input has features")
    out = args.get("out_features")
    if out is None:
        if not context.is_last_linear:
            raise LayerProblem(
                "out_features is missing; only the last Linear may leave it out "
                "(it then becomes the dataset's number of classes)"
            )
        if context.num_classes is None:
            raise LayerProblem(
                "out_features is missing and the number of classes is unknown; "
                "pass --dataset NAME or set out_features"
            )
        out = context.num_classes
        if out > LINEAR_MAX_OUT:  # the classes come from the data (or --num-classes)
            raise LayerProblem(
                f"out_features would be the {out:,} classes, more than a Linear outputs here "
                f"(at most {LINEAR_MAX_OUT:,}); check the label column or --num-classes"
            )
    kwargs = {"in_features": shape[-1], "out_features": out}
    kwargs.update({k: v for k, v in args.items() if k not in kwargs})
    return Construct(nn.Linear, kwargs)


@register(
    "Flatten",
    family="Common",
    short="flatten",
    params=(
        ParamSpec(
            "start_dim",
            "int",
            1,
            1,
            16,
            help="First dimension to flatten; PyTorch counts the batch as 0, so 1 "
            "flattens each whole sample.",
        ),
        ParamSpec("end_dim", "int", -1, -16, 16, help="Last dimension to flatten (-1 = last)."),
    ),
    description="Lays out an image or a sequence as one long list of numbers.",
)
def flatten(args: dict[str, Any], context: LayerContext) -> Construct:
    total = len(context.shape) + 1  # PyTorch counts the batch dimension
    start = args.get("start_dim", 1)
    end = args.get("end_dim", -1)
    end = end if end >= 0 else total + end
    if not 1 <= start <= total - 1 or not start <= end <= total - 1:
        raise LayerProblem(
            f"start_dim={start}, end_dim={args.get('end_dim', -1)} do not fit its input "
            f"{fmt(context.shape)}: PyTorch counts the batch as dimension 0, so use "
            f"1 ≤ start_dim ≤ end_dim ≤ {total - 1}"
        )
    return Construct(nn.Flatten, dict(args))


@register(
    "Permute",
    family="Common",
    short="permute",
    params=(
        ParamSpec(
            "dims",
            "int_list",
            [1, 0],
            required=True,
            help="New order of the dimensions after the batch: [1, 0] turns "
            "(channels, time) into (time, channels).",
        ),
    ),
    description="Reorders the dimensions, e.g. turns (channels, time) into (time, channels).",
)
def permute(args: dict[str, Any], context: LayerContext) -> Construct:
    rank = len(context.shape)
    dims = tuple(d + rank if d < 0 else d for d in args["dims"])
    if sorted(dims) != list(range(rank)):
        example = list(range(rank))[::-1]
        raise LayerProblem(
            f"dims={list(args['dims'])} is not an ordering of its input's {rank} dimensions "
            f"{fmt(context.shape)} (batch excluded); use each of 0..{rank - 1} once, "
            f"e.g. {example}"
        )
    return Construct(Permute, {"dims": dims})


@register(
    "Reshape",
    family="Common",
    short="reshape",
    params=(
        ParamSpec(
            "shape",
            "int_list",
            [-1],
            required=True,
            help="New shape after the batch, same number of values; one size may be -1 (computed).",
        ),
    ),
    description="Gives the data a new shape holding the same numbers, e.g. 40 -> (40, 1).",
)
def reshape(args: dict[str, Any], context: LayerContext) -> Construct:
    shape = args["shape"]
    size = math.prod(context.shape)
    if not shape or any(s == 0 or s < -1 for s in shape) or list(shape).count(-1) > 1:
        raise LayerProblem(
            f"shape={list(shape)} is not a shape; use positive sizes, at most one of them -1"
        )
    known = math.prod(s for s in shape if s != -1)
    fits = size % known == 0 if -1 in shape else known == size
    if not fits:
        raise LayerProblem(
            f"shape={list(shape)} holds {known} values but its input {fmt(context.shape)} holds "
            f"{size}; use sizes that multiply to {size}, e.g. [{size}] or [-1, {context.shape[-1]}]"
        )
    return Construct(Reshape, {"shape": tuple(shape)})


def activation(name: str, cls: type[nn.Module], description: str, params=()) -> None:
    short = name.lower()

    def make(args: dict[str, Any], context: LayerContext) -> Construct:
        return Construct(cls, dict(args), elementwise=True)

    register(name, family="Common", short=short, params=params, description=description)(make)


activation("ReLU", nn.ReLU, "Keeps positive values and turns negatives into zero.")
activation(
    "LeakyReLU",
    nn.LeakyReLU,
    "Like ReLU but lets a little of the negative values through.",
    (
        ParamSpec(
            "negative_slope",
            "float",
            0.01,
            0.0,
            10.0,
            help="How much of a negative value passes (0.01 = 1%).",
        ),
    ),
)
activation(
    "GELU",
    nn.GELU,
    "A smooth ReLU, common in Transformers.",
    (
        ParamSpec(
            "approximate",
            "choice",
            "none",
            choices=("none", "tanh"),
            help="Exact formula or the faster tanh approximation.",
        ),
    ),
)
activation("SiLU", nn.SiLU, "A smooth ReLU (x times sigmoid of x), also called swish.")
activation("Tanh", nn.Tanh, "Squashes values into the range -1 to 1.")
activation("Sigmoid", nn.Sigmoid, "Squashes values into the range 0 to 1.")
activation("Identity", nn.Identity, "Passes its input through unchanged (a placeholder).")


@register(
    "Add",
    family="Common",
    short="add",
    merge=True,
    description="Adds its inputs together, e.g. a block's output and its shortcut (residual).",
)
def add(args: dict[str, Any], context: LayerContext) -> Construct:
    need_several(context, "Add", "sums")
    first = context.shapes[0]
    for name, shape in zip(context.sources[1:], context.shapes[1:], strict=True):
        if shape != first:
            fix = "change out_channels or strides, or put a 1x1 Conv2d or a Linear on the shortcut"
            if len(shape) == len(first) >= 2 and shape[0] == first[0]:
                # same channels, other sizes: an unpadded convolution shrank one branch
                fix = (
                    "only the sizes after the channels differ: a convolution without padding "
                    'shrinks its input, so give the convolutions padding "same" (or the same '
                    "padding and strides on both branches)"
                )
            raise LayerProblem(
                f"cannot add {fmt(first)} from {context.sources[0]!r} and {fmt(shape)} from "
                f"{name!r}; Add needs identical shapes ({fix})"
            )
    return Construct(Add, {}, elementwise=True)


@register(
    "Concat",
    family="Common",
    short="cat",
    merge=True,
    params=(
        # no fixed range: which dims exist depends on the inputs, and the maker says so
        ParamSpec(
            "dim",
            "int",
            0,
            help="Dimension to join along, batch excluded: 0 = channels, -1 = last.",
        ),
    ),
    description="Joins its inputs side by side, e.g. the channels of two branches.",
)
def concat(args: dict[str, Any], context: LayerContext) -> Construct:
    need_several(context, "Concat", "joins")
    first = context.shapes[0]
    rank = len(first)
    dim = args.get("dim", 0)
    if not -rank <= dim < rank:
        raise LayerProblem(
            f"dim={_show_int(dim)} does not exist in {fmt(first)}; {dims_allowed(rank)}"
        )
    dim = dim % rank
    for name, shape in zip(context.sources[1:], context.shapes[1:], strict=True):
        same_rest = len(shape) == rank and all(
            a == b for i, (a, b) in enumerate(zip(first, shape, strict=True)) if i != dim
        )
        if not same_rest:
            raise LayerProblem(
                f"cannot join {fmt(first)} from {context.sources[0]!r} and {fmt(shape)} from "
                f"{name!r} along dim {dim}; all other sizes must match"
            )
    return Construct(Concat, {"dim": dim})


def dims_allowed(rank: int) -> str:
    """The dims a (rank)-dimensional input has, batch excluded, in words."""
    if rank == 1:
        return "it has one dimension: use 0 (or -1)"
    return f"it has {rank} dimensions: use 0 to {rank - 1} (or -{rank} to -1 from the end)"


def _show_int(value: int) -> str:
    return str(value) if abs(value) < 10**15 else f"{Decimal(value):.3e}"


def need_several(context: LayerContext, name: str, verb: str) -> None:
    if len(context.shapes) < 2:
        raise LayerProblem(
            f'{name} {verb} two or more inputs but receives one; list them in "inputs", '
            'e.g. "inputs": ["shortcut", "conv2"] with matching "id"s on those layers'
        )
