"""CNN layers: convolutions, pooling, batch norm and dropout."""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from core.layers.registry import Construct, LayerContext, LayerProblem, ParamSpec, register
from core.layers.shapes import as_tuple, check_window, inferred_matches, need_rank, step, what

MAX_CHANNELS = 16384
MAX_WINDOW = 1024


def conv_params(n: int) -> tuple[ParamSpec, ...]:
    pair = 2 if n == 2 else 0
    return (
        ParamSpec(
            "out_channels",
            "int",
            16,
            1,
            MAX_CHANNELS,
            required=True,
            help="How many patterns (filters) to learn; the number of output channels.",
        ),
        ParamSpec(
            "kernel_size",
            "int",
            3,
            1,
            MAX_WINDOW,
            required=True,
            tuple_len=pair,
            help="Width of the window each filter looks at (3 = 3x3 for images).",
        ),
        ParamSpec(
            "stride",
            "int",
            1,
            1,
            MAX_WINDOW,
            tuple_len=pair,
            help="Step between windows; 2 halves the output size.",
        ),
        ParamSpec(
            "padding",
            "int",
            0,
            0,
            MAX_WINDOW,
            tuple_len=pair,
            words=("same", "valid"),
            help='Zeros added around the input; "same" keeps the size (stride 1 only).',
        ),
        ParamSpec(
            "dilation",
            "int",
            1,
            1,
            MAX_WINDOW,
            tuple_len=pair,
            help="Spacing between the kernel's taps; >1 sees wider with the same weights.",
        ),
        ParamSpec(
            "groups",
            "int",
            1,
            1,
            MAX_CHANNELS,
            help="Split channels into independent groups; must divide both channel counts.",
        ),
        ParamSpec("bias", "bool", True, help="Learn an offset per output channel."),
        ParamSpec(
            "padding_mode",
            "choice",
            "zeros",
            choices=("zeros", "reflect", "replicate", "circular"),
            help="What the padding is filled with.",
        ),
    )


def make_conv(args: dict[str, Any], context: LayerContext, n: int) -> Construct:
    if n == 1:
        shape = need_rank(
            context, (2,), "a signal shaped (channels, length)", conv1d_hint(context.shape)
        )
    else:
        shape = need_rank(
            context, (3,), "an image shaped (channels, height, width)", conv2d_hint(context.shape)
        )
    channels, sizes = shape[0], shape[1:]
    inferred_matches(args, "in_channels", channels, "its input has channels")
    groups = args.get("groups", 1)
    out_channels = args["out_channels"]
    if channels % groups or out_channels % groups:
        raise LayerProblem(
            f"groups={groups} must divide both its {channels} input channels and its "
            f"{out_channels} output channels; use groups=1 or a divisor of both"
        )
    kernel = as_tuple(args["kernel_size"], n)
    dilation = as_tuple(args.get("dilation", 1), n)
    stride = as_tuple(args.get("stride", 1), n)
    padding = args.get("padding", 0)
    if padding == "same":  # pads to keep the size, so any kernel fits
        if any(s != 1 for s in stride):
            raise LayerProblem('padding "same" needs stride 1; use a number for padding instead')
    else:
        pads = (0,) * n if padding == "valid" else as_tuple(padding, n)
        check_window(
            context, sizes=sizes, kernel=kernel, padding=pads, dilation=dilation, noun="kernel"
        )
    kwargs = {"in_channels": channels, **{k: v for k, v in args.items() if k != "in_channels"}}
    return Construct(nn.Conv1d if n == 1 else nn.Conv2d, kwargs)


def conv1d_hint(shape: tuple[int, ...]) -> str:
    if len(shape) == 3:
        return "use Conv2d for images, or Reshape it to (channels, length)"
    if len(shape) == 1:
        return f"add {step({'type': 'Reshape', 'shape': [1, shape[0]]})} before it to make it a one-channel signal"
    return "add a Reshape before it to give it shape (channels, length)"


def conv2d_hint(shape: tuple[int, ...]) -> str:
    if len(shape) == 2:
        reshape = step({"type": "Reshape", "shape": [1, *shape]})
        return (
            f"add {reshape} before it to treat it as a one-channel image, or use Conv1d for signals"
        )
    side = math.isqrt(shape[0]) if len(shape) == 1 else 0
    if side and side * side == shape[0]:
        reshape = step({"type": "Reshape", "shape": [1, side, side]})
        return f"add {reshape} before it to make it a one-channel image"
    return "add a Reshape before it to give it shape (channels, height, width)"


@register(
    "Conv1d",
    family="CNN",
    short="conv",
    inferred=("in_channels",),
    params=conv_params(1),
    description="Finds short local patterns, such as bumps or edges, along a signal.",
)
def conv1d(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_conv(args, context, 1)


@register(
    "Conv2d",
    family="CNN",
    short="conv",
    inferred=("in_channels",),
    params=conv_params(2),
    description="Finds small local patterns in an image, such as edges or strokes.",
)
def conv2d(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_conv(args, context, 2)


def pool_params(n: int, *, max_pool: bool) -> tuple[ParamSpec, ...]:
    pair = 2 if n == 2 else 0
    params = [
        ParamSpec(
            "kernel_size",
            "int",
            2,
            1,
            MAX_WINDOW,
            required=True,
            tuple_len=pair,
            help="Size of the window summarized into one value (2 halves the size).",
        ),
        ParamSpec(
            "stride",
            "int",
            None,
            1,
            MAX_WINDOW,
            tuple_len=pair,
            nullable=True,
            help="Step between windows; empty means the same as kernel_size.",
        ),
        ParamSpec(
            "padding",
            "int",
            0,
            0,
            MAX_WINDOW,
            tuple_len=pair,
            help="Padding added on each side; at most half the window.",
        ),
    ]
    if max_pool:
        params.append(
            ParamSpec(
                "dilation",
                "int",
                1,
                1,
                MAX_WINDOW,
                tuple_len=pair,
                help="Spacing between the window's taps.",
            )
        )
    params.append(
        ParamSpec("ceil_mode", "bool", False, help="Round the output size up instead of down.")
    )
    if not max_pool:
        params.append(
            ParamSpec("count_include_pad", "bool", True, help="Count padding zeros in the average.")
        )
    return tuple(params)


def make_pool(
    args: dict[str, Any], context: LayerContext, n: int, cls: type[nn.Module]
) -> Construct:
    if n == 1:
        shape = need_rank(
            context, (2,), "a signal shaped (channels, length)", conv1d_hint(context.shape)
        )
    else:
        shape = need_rank(
            context, (3,), "an image shaped (channels, height, width)", conv2d_hint(context.shape)
        )
    kernel = as_tuple(args["kernel_size"], n)
    padding = as_tuple(args.get("padding", 0), n)
    dilation = as_tuple(args.get("dilation", 1), n)
    for k, p in zip(kernel, padding, strict=True):
        if p > k // 2:
            raise LayerProblem(
                f"padding={p} is more than half its window of {k}; use padding ≤ {k // 2}"
            )
    check_window(
        context, sizes=shape[1:], kernel=kernel, padding=padding, dilation=dilation, noun="window"
    )
    return Construct(cls, dict(args))


def adaptive_params(n: int) -> tuple[ParamSpec, ...]:
    return (
        ParamSpec(
            "output_size",
            "int",
            1,
            1,
            MAX_WINDOW,
            tuple_len=2 if n == 2 else 0,
            help="Size of the output whatever the input size (1 = one average per channel).",
        ),
    )


@register(
    "MaxPool1d",
    family="CNN",
    short="pool",
    params=pool_params(1, max_pool=True),
    description="Shrinks a signal by keeping the strongest value in each window.",
)
def max_pool1d(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_pool(args, context, 1, nn.MaxPool1d)


@register(
    "MaxPool2d",
    family="CNN",
    short="pool",
    params=pool_params(2, max_pool=True),
    description="Shrinks an image by keeping the strongest value in each small square.",
)
def max_pool2d(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_pool(args, context, 2, nn.MaxPool2d)


@register(
    "AvgPool1d",
    family="CNN",
    short="pool",
    params=pool_params(1, max_pool=False),
    description="Shrinks a signal by averaging the values in each window.",
)
def avg_pool1d(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_pool(args, context, 1, nn.AvgPool1d)


@register(
    "AvgPool2d",
    family="CNN",
    short="pool",
    params=pool_params(2, max_pool=False),
    description="Shrinks an image by averaging each small square.",
)
def avg_pool2d(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_pool(args, context, 2, nn.AvgPool2d)


@register(
    "AdaptiveAvgPool1d",
    family="CNN",
    short="pool",
    params=adaptive_params(1),
    description="Averages a signal down to a fixed length, whatever its length was.",
)
def adaptive_avg_pool1d(args: dict[str, Any], context: LayerContext) -> Construct:
    need_rank(context, (2,), "a signal shaped (channels, length)", conv1d_hint(context.shape))
    return Construct(nn.AdaptiveAvgPool1d, {"output_size": args.get("output_size", 1)})


@register(
    "AdaptiveAvgPool2d",
    family="CNN",
    short="pool",
    params=adaptive_params(2),
    description="Averages an image down to a fixed size, whatever its size was.",
)
def adaptive_avg_pool2d(args: dict[str, Any], context: LayerContext) -> Construct:
    need_rank(
        context, (3,), "an image shaped (channels, height, width)", conv2d_hint(context.shape)
    )
    return Construct(nn.AdaptiveAvgPool2d, {"output_size": args.get("output_size", 1)})


BATCH_NORM_PARAMS = (
    ParamSpec("eps", "float", 1e-5, 1e-12, 1.0, help="Small number that avoids dividing by zero."),
    ParamSpec(
        "momentum",
        "float",
        0.1,
        0.0,
        1.0,
        help="How fast the running averages used at prediction time follow the data.",
    ),
    ParamSpec("affine", "bool", True, help="Learn a scale and an offset per channel."),
    ParamSpec(
        "track_running_stats", "bool", True, help="Keep running averages to use when predicting."
    ),
)


@register(
    "BatchNorm1d",
    family="CNN",
    short="bn",
    inferred=("num_features",),
    params=BATCH_NORM_PARAMS,
    description="Rescales each channel or feature to a steady range so training goes smoother.",
)
def batch_norm1d(args: dict[str, Any], context: LayerContext) -> Construct:
    shape = need_rank(
        context,
        (1, 2),
        "features (features,) or a signal (channels, length)",
        "use BatchNorm2d for images",
    )
    inferred_matches(args, "num_features", shape[0], "its input has")
    return Construct(
        nn.BatchNorm1d,
        {"num_features": shape[0], **_without(args, "num_features")},
        elementwise=True,
    )


@register(
    "BatchNorm2d",
    family="CNN",
    short="bn",
    inferred=("num_features",),
    params=BATCH_NORM_PARAMS,
    description="Rescales each image channel to a steady range so training goes smoother.",
)
def batch_norm2d(args: dict[str, Any], context: LayerContext) -> Construct:
    shape = need_rank(
        context,
        (3,),
        "an image shaped (channels, height, width)",
        "use BatchNorm1d for features and signals"
        if len(context.shape) < 3
        else "add a Reshape before it",
    )
    inferred_matches(args, "num_features", shape[0], "its input has channels")
    return Construct(
        nn.BatchNorm2d,
        {"num_features": shape[0], **_without(args, "num_features")},
        elementwise=True,
    )


DROPOUT_P = ParamSpec(
    "p",
    "float",
    0.5,
    0.0,
    1.0,
    help="Share of values switched off at random while training (0 to 1).",
)


@register(
    "Dropout",
    family="CNN",
    short="dropout",
    params=(DROPOUT_P,),
    description="Randomly switches off some values while training so the model does not memorize.",
)
def dropout(args: dict[str, Any], context: LayerContext) -> Construct:
    return Construct(nn.Dropout, dict(args), elementwise=True)


@register(
    "Dropout2d",
    family="CNN",
    short="dropout",
    params=(DROPOUT_P,),
    description="Randomly switches off whole image channels while training.",
)
def dropout2d(args: dict[str, Any], context: LayerContext) -> Construct:
    need_rank(
        context,
        (3,),
        "an image shaped (channels, height, width)",
        f"use Dropout for {what(context.shape)}",
    )
    return Construct(nn.Dropout2d, dict(args), elementwise=True)


def _without(args: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in names}
