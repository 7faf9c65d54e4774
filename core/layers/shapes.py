"""Shape checks shared by layer builders; each failure says what came in and what would work."""

from __future__ import annotations

import json
import math
from typing import Any

from core.layers.registry import LayerContext, LayerProblem

Shape = tuple[int, ...]


def fmt(shape: Shape) -> str:
    """(16, 5, 5) -- a shape without the batch dimension, as people read it."""
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def what(shape: Shape) -> str:
    """A shape described for people: 'an image (3, 32, 32)', 'flat features (400,)'."""
    if len(shape) == 1:
        return f"flat features {fmt(shape)}"
    if len(shape) == 2:
        return f"a sequence or signal {fmt(shape)}"
    if len(shape) == 3:
        return f"an image {fmt(shape)}"
    return f"a {len(shape)}-D tensor {fmt(shape)}"


def step(layer: dict[str, Any]) -> str:
    """A layer as the JSON a person would paste into the spec."""
    return json.dumps(layer)


def to_sequence_hint(shape: Shape) -> str:
    """How to turn `shape` into a (time, features) sequence, with concrete numbers."""
    if len(shape) == 1:
        return f"add {step({'type': 'Reshape', 'shape': [shape[0], 1]})} before it to read it as a sequence of {shape[0]} steps"
    if len(shape) == 3:
        c, h, w = shape
        if c == 1:
            return f"add {step({'type': 'Reshape', 'shape': [h, w]})} before it to read the image row by row ({h} steps of {w} features)"
        return (
            f"add {step({'type': 'Permute', 'dims': [1, 0, 2]})} and "
            f"{step({'type': 'Reshape', 'shape': [h, c * w]})} before it to read the image row by "
            f"row ({h} steps of {c * w} features), or a Flatten and Linear for a plain classifier"
        )
    return f"add a Reshape before it to give it shape (time, features) ({math.prod(shape)} values)"


def need_sequence(context: LayerContext, layer: str) -> tuple[int, int]:
    """The (time, features) of a sequence input, or a LayerProblem saying how to make one."""
    shape = context.shape
    if len(shape) != 2:
        raise LayerProblem(
            f"{layer} layers take a sequence shaped (time, features) but this one receives "
            f"{what(shape)}; {to_sequence_hint(shape)}"
        )
    return shape


def need_rank(context: LayerContext, ranks: tuple[int, ...], needs: str, hint: str) -> Shape:
    shape = context.shape
    if len(shape) not in ranks:
        raise LayerProblem(f"it needs {needs} but receives {what(shape)}; {hint}")
    return shape


def as_tuple(value: int | tuple[int, ...], n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * n


def check_window(
    context: LayerContext,
    *,
    sizes: Shape,
    kernel: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    noun: str,
) -> None:
    """A kernel or pooling window must fit the (padded) input it slides over."""
    effective = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    padded = [s + 2 * p for s, p in zip(sizes, padding, strict=True)]
    if all(e <= p for e, p in zip(effective, padded, strict=True)):
        return
    largest = min((p - 1) // d + 1 for p, d in zip(padded, dilation, strict=True))
    fixes = [f"use kernel_size ≤ {largest}" if largest >= 1 else "use a smaller kernel_size"]
    dilated = any(d > 1 for d in dilation)
    if dilated:
        fixes.append("a smaller dilation")
    fixes.append("add padding")
    if context.after_pooling:
        fixes.append("remove a pooling layer before it")
    fix = ", ".join(fixes[:-1]) + ", or " + fixes[-1]
    if len(sizes) == 1:
        spans = f"{noun} of {kernel[0]} with dilation {dilation[0]} spans {effective[0]} and"
        shown = f"its {spans if dilated else f'{noun} of {effective[0]}'} does not fit the "
        shown += f"length-{sizes[0]} input it receives"
    else:
        k = "x".join(str(e) for e in effective)
        s = "x".join(str(v) for v in sizes)
        if dilated:
            written = "x".join(str(v) for v in kernel)
            d = dilation[0] if len(set(dilation)) == 1 else list(dilation)
            k = f"{written} {noun} with dilation {d} spans {k} and"
        else:
            k = f"{k} {noun}"
        shown = f"its {k} does not fit the {s} input it receives"
    if any(p > 0 for p in padding):
        shown += f" (padded to {'x'.join(str(p) for p in padded)})"
    raise LayerProblem(f"{shown}; {fix}")


def inferred_matches(args: dict[str, Any], name: str, value: Any, what_input: str) -> None:
    """An inferred argument may be written in the spec, but only with the inferred value."""
    if name not in args:
        return
    given = args[name]
    if isinstance(given, list):
        given = tuple(given)
    if given != value:
        raise LayerProblem(
            f"{name}={given} but {what_input} {value}; remove {name} (it is inferred from the input)"
        )


def divisors(n: int, limit: int = 16) -> str:
    found = [d for d in range(1, min(n, limit) + 1) if n % d == 0]
    return ", ".join(str(d) for d in found)
