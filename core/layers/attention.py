"""Attention layers and what feeds them: embeddings, positions, layer norm."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.layers.registry import (
    LAYERS,
    Construct,
    LayerContext,
    LayerProblem,
    ParamSpec,
    register,
)
from core.layers.shapes import divisors, fmt, inferred_matches, need_sequence
from core.studio_layers import PositionalEncoding, SelfAttention

DROPOUT = ParamSpec(
    "dropout",
    "float",
    0.0,
    0.0,
    1.0,
    help="Share of attention weights switched off at random while training.",
)


def check_heads(features: int, heads: int, name: str) -> None:
    if features % heads:
        raise LayerProblem(
            f"{name}={heads} must divide the {features} features it receives; "
            f"use {divisors(features)} heads, or change the layer before it"
        )


@register(
    "MultiheadAttention",
    family="Attention",
    short="attn",
    inferred=("embed_dim",),
    sequence_only=True,
    params=(
        ParamSpec(
            "num_heads",
            "int",
            4,
            1,
            256,
            required=True,
            help="Parallel attention heads; must divide the number of features.",
        ),
        DROPOUT,
        ParamSpec("bias", "bool", True, help="Learn offsets in the projections."),
    ),
    description="Lets every step of a sequence look at every other step and pick what matters.",
)
def multihead_attention(args: dict[str, Any], context: LayerContext) -> Construct:
    _, features = need_sequence(context, "attention")
    inferred_matches(args, "embed_dim", features, "its input has features")
    check_heads(features, args["num_heads"], "num_heads")
    return Construct(SelfAttention, {"embed_dim": features, **_without(args, "embed_dim")})


@register(
    "TransformerEncoderLayer",
    family="Attention",
    short="encoder",
    inferred=("d_model",),
    sequence_only=True,
    params=(
        ParamSpec(
            "nhead",
            "int",
            4,
            1,
            256,
            required=True,
            help="Parallel attention heads; must divide the number of features.",
        ),
        ParamSpec(
            "dim_feedforward",
            "int",
            2048,
            1,
            65536,
            help="Width of the small network applied to each step after attention.",
        ),
        ParamSpec("dropout", "float", 0.1, 0.0, 1.0, help="Dropout inside the block."),
        ParamSpec(
            "activation",
            "choice",
            "relu",
            choices=("relu", "gelu"),
            help="Activation of the feed-forward network.",
        ),
        ParamSpec(
            "layer_norm_eps",
            "float",
            1e-5,
            1e-12,
            1.0,
            help="Small number that avoids dividing by zero.",
        ),
        ParamSpec(
            "norm_first",
            "bool",
            False,
            help="Normalize before attention (often trains more stably).",
        ),
        ParamSpec("bias", "bool", True, help="Learn offsets in its linear layers."),
    ),
    description="A full Transformer block: self-attention then a small per-step network.",
)
def transformer_encoder_layer(args: dict[str, Any], context: LayerContext) -> Construct:
    _, features = need_sequence(context, "attention")
    inferred_matches(args, "d_model", features, "its input has features")
    check_heads(features, args["nhead"], "nhead")
    kwargs = {"d_model": features, **_without(args, "d_model"), "batch_first": True}
    return Construct(nn.TransformerEncoderLayer, kwargs)


@register(
    "PositionalEncoding",
    family="Attention",
    short="pos_enc",
    inferred=("d_model",),
    params=(
        ParamSpec(
            "kind",
            "choice",
            "sinusoidal",
            choices=("sinusoidal", "learned"),
            help="Fixed sine waves, or positions learned during training.",
        ),
        ParamSpec(
            "max_len",
            "int",
            None,
            1,
            1_000_000,
            nullable=True,
            help="Longest sequence it accepts; empty means the incoming length.",
        ),
        ParamSpec("dropout", "float", 0.0, 0.0, 1.0, help="Dropout after adding positions."),
    ),
    description="Tells attention layers where each step is in the sequence.",
)
def positional_encoding(args: dict[str, Any], context: LayerContext) -> Construct:
    time, features = need_sequence(context, "positional encoding")
    inferred_matches(args, "d_model", features, "its input has features")
    max_len = args.get("max_len") or time
    if time > max_len:
        raise LayerProblem(
            f"it receives sequences of {time} steps but max_len={max_len}; "
            f"use max_len ≥ {time} or leave it out"
        )
    kwargs = {"d_model": features, "max_len": max_len}
    kwargs.update({k: v for k, v in args.items() if k not in ("d_model", "max_len")})
    return Construct(PositionalEncoding, kwargs)


@register(
    "Embedding",
    family="RNN",  # where a person looks for text input: with the sequence layers
    short="embed",
    params=(
        ParamSpec(
            "num_embeddings",
            "int",
            None,
            1,
            10_000_000,
            nullable=True,
            help="Vocabulary size; empty means the dataset's vocabulary.",
        ),
        ParamSpec(
            "embedding_dim",
            "int",
            64,
            1,
            65536,
            required=True,
            help="How many numbers describe each token.",
        ),
        ParamSpec(
            "padding_idx",
            "int",
            None,
            0,
            10_000_000,
            nullable=True,
            help="Token id used for padding; its vector stays zero.",
        ),
    ),
    description="Turns each word or token id into a list of numbers the model can learn.",
)
def embedding(args: dict[str, Any], context: LayerContext) -> Construct:
    if context.dtype not in (torch.int64, torch.int32):
        raise LayerProblem(
            "it turns token ids (whole numbers) into vectors, but receives numbers that are not "
            f"token ids, shaped {fmt(context.shape)}; use it as the first layer of a text model "
            "on a text dataset"
        )
    if len(context.shape) != 1:
        raise LayerProblem(f"it needs token ids shaped (time,) but receives {fmt(context.shape)}")
    given, vocab = args.get("num_embeddings"), context.vocab_size
    if given is None and vocab is None:
        raise LayerProblem(
            "num_embeddings (the vocabulary size) is unknown; pass a text dataset "
            "(--dataset) or --vocab-size N, or set num_embeddings"
        )
    if given is not None and vocab is not None and given < vocab:
        raise LayerProblem(
            f"num_embeddings={given} is smaller than the dataset's vocabulary of {vocab} tokens; "
            f"use num_embeddings ≥ {vocab} or leave it out"
        )
    count = given if given is not None else vocab
    most = LAYERS["Embedding"].param("num_embeddings").maximum
    if most is not None and count > most:  # a vocabulary from the data (or --vocab-size)
        raise LayerProblem(
            f"the vocabulary of {count:,} tokens is more than an Embedding holds here (at most "
            f"{int(most):,}); keep fewer words or check --vocab-size"
        )
    padding = args.get("padding_idx")
    if padding is not None and padding >= count:
        raise LayerProblem(f"padding_idx={padding} is not a token id; use 0 to {count - 1}")
    return Construct(nn.Embedding, {"num_embeddings": count, **_without(args, "num_embeddings")})


@register(
    "LayerNorm",
    family="Attention",
    short="norm",
    inferred=("normalized_shape",),
    params=(
        ParamSpec(
            "eps", "float", 1e-5, 1e-12, 1.0, help="Small number that avoids dividing by zero."
        ),
        ParamSpec(
            "elementwise_affine", "bool", True, help="Learn a scale and an offset per feature."
        ),
        ParamSpec("bias", "bool", True, help="Learn the offset (with elementwise_affine)."),
    ),
    description="Rescales each step's features to a steady range; standard in Transformers.",
)
def layer_norm(args: dict[str, Any], context: LayerContext) -> Construct:
    features = context.shape[-1]
    if "normalized_shape" in args:
        given = args["normalized_shape"]
        wanted = given if isinstance(given, int) else tuple(given)
        if wanted not in (features, (features,)):
            raise LayerProblem(
                f"normalized_shape={given} but its input has {features} features in its last "
                "dimension; remove normalized_shape (it is inferred from the input)"
            )
    return Construct(
        nn.LayerNorm,
        {"normalized_shape": features, **_without(args, "normalized_shape")},
        elementwise=True,
    )


def _without(args: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in names}
