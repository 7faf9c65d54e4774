"""Recurrent layers: read a sequence step by step, returning the whole output sequence."""

from __future__ import annotations

from typing import Any

from torch import nn

from core.layers.registry import Construct, LayerContext, LayerProblem, ParamSpec, register
from core.layers.shapes import inferred_matches, need_sequence, to_sequence_hint, what
from core.studio_layers import SequencePool

RECURRENT_PARAMS = (
    ParamSpec(
        "hidden_size",
        "int",
        64,
        1,
        16384,
        required=True,
        help="How many numbers the layer keeps as its memory at each step.",
    ),
    ParamSpec(
        "num_layers",
        "int",
        1,
        1,
        16,
        help="How many recurrent layers are stacked on top of each other.",
    ),
    ParamSpec(
        "bidirectional",
        "bool",
        False,
        help="Also read the sequence backwards; doubles the output features.",
    ),
    ParamSpec(
        "dropout",
        "float",
        0.0,
        0.0,
        1.0,
        help="Dropout between stacked layers (only used when num_layers > 1).",
    ),
    ParamSpec("bias", "bool", True, help="Learn offsets in the gates."),
)


def make_recurrent(args: dict[str, Any], context: LayerContext, cls: type[nn.Module]) -> Construct:
    _, features = need_sequence(context, "recurrent")
    inferred_matches(args, "input_size", features, "its input has features")
    kwargs = {"input_size": features, **{k: v for k, v in args.items() if k != "input_size"}}
    kwargs["batch_first"] = True
    return Construct(cls, kwargs, tuple_output=True, stepwise=True)


@register(
    "RNN",
    family="RNN",
    short="rnn",
    inferred=("input_size",),
    sequence_only=True,
    params=RECURRENT_PARAMS
    + (
        ParamSpec(
            "nonlinearity",
            "choice",
            "tanh",
            choices=("tanh", "relu"),
            help="The squashing function applied at each step.",
        ),
    ),
    description="Reads a sequence one step at a time, carrying a simple memory along.",
)
def rnn(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_recurrent(args, context, nn.RNN)


@register(
    "LSTM",
    family="RNN",
    short="lstm",
    inferred=("input_size",),
    sequence_only=True,
    params=RECURRENT_PARAMS,
    description="Reads a sequence step by step with a gated memory that keeps long-range context.",
)
def lstm(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_recurrent(args, context, nn.LSTM)


@register(
    "GRU",
    family="RNN",
    short="gru",
    inferred=("input_size",),
    sequence_only=True,
    params=RECURRENT_PARAMS,
    description="Reads a sequence step by step with a gated memory; lighter than an LSTM.",
)
def gru(args: dict[str, Any], context: LayerContext) -> Construct:
    return make_recurrent(args, context, nn.GRU)


@register(
    "SequencePool",
    family="RNN",
    short="seq_pool",
    params=(
        ParamSpec(
            "mode",
            "choice",
            "last",
            choices=("last", "mean", "max"),
            help="Keep the last step, or the mean or max over all steps.",
        ),
    ),
    description="Sums up a whole sequence into one vector, e.g. to classify it.",
)
def sequence_pool(args: dict[str, Any], context: LayerContext) -> Construct:
    if len(context.shape) != 2:
        hint = (
            "it is already one vector; remove the SequencePool"
            if len(context.shape) == 1
            else to_sequence_hint(context.shape)
        )
        raise LayerProblem(
            f"it summarizes a sequence shaped (time, features) but receives {what(context.shape)}; {hint}"
        )
    return Construct(SequencePool, dict(args))
