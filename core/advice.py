"""Advice on models that build but will not learn what their author meant.

Every shape fits, yet a GRU fed a (1, 40) signal reads one step of 40 values (its memory has
nothing to carry), and SequencePool("last") on texts padded at the end reads the padding. The
trace cannot call these errors (they are valid models); `advise` names them, per layer, with
the one change that fixes each, typed so the Build page can offer it as a button and the CLI
can print it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.spec import INPUT

if TYPE_CHECKING:
    from core.builder import Trace

RECURRENT_TYPES = ("RNN", "LSTM", "GRU")


@dataclass(frozen=True)
class Fix:
    """One change to the spec, in words (`label`) and as data: layers to insert right before
    the advised layer, and/or arguments to set on it."""

    label: str
    insert_before: tuple[dict[str, Any], ...] = ()
    set_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Advice:
    """A valid layer that probably does not do what was meant: why, and how to fix it."""

    index: int  # the layer's index in the spec
    layer_type: str
    message: str
    fix: Fix | None = None

    def __str__(self) -> str:
        return f"layer {self.index} ({self.layer_type}): {self.message}"


def advise(trace: Trace) -> list[Advice]:
    """Advice for the layers of a trace (a failed trace: for the layers traced before the
    error), in execution order."""
    shapes: dict[str, tuple[int, ...]] = {}
    if trace.facts.input_shape is not None:
        shapes[INPUT] = tuple(trace.facts.input_shape)
    advice: list[Advice] = []
    for layer in trace.layers:
        received = shapes.get(layer.inputs[0]) if layer.inputs else None
        shapes[layer.name] = tuple(layer.output_shape)
        if received is None:
            continue
        found = (
            _one_step_sequence(layer.type, received)
            or _last_reads_padding(trace, layer, received)
            or _random_backbone(trace, layer)
        )
        if found is not None:
            message, fix = found
            advice.append(Advice(layer.index, layer.type, message, fix))
    return advice


def _one_step_sequence(layer_type: str, received: tuple[int, ...]) -> tuple[str, Fix] | None:
    if layer_type not in RECURRENT_TYPES or len(received) != 2:
        return None
    steps, features = received
    if steps != 1 or features < 2:
        return None
    message = (
        f"it reads a sequence of length 1: one step of {features} values, so its memory has "
        f"nothing to carry from step to step. To read {features} steps of 1 value each, put a "
        "Permute with dims [1, 0] before it."
    )
    fix = Fix(
        label=f"Put Permute [1, 0] before it ({features} steps of 1 value)",
        insert_before=({"type": "Permute", "dims": [1, 0]},),
    )
    return message, fix


def _last_reads_padding(
    trace: Trace, layer: Any, received: tuple[int, ...]
) -> tuple[str, Fix] | None:
    if layer.type != "SequencePool" or not trace.facts.is_text or len(received) != 2:
        return None
    if received[0] < 2 or _mode_of(trace, layer.index) != "last":
        return None
    message = (
        f'mode "last" keeps step {received[0]} of every text, but texts shorter than '
        f"{received[0]} tokens are padded at the end, so for them it reads padding, not words "
        '(a model trained so often stays at chance). Mode "mean" sums up every step.'
    )
    return message, Fix(label='Use mode "mean"', set_args={"mode": "mean"})


def _random_backbone(trace: Trace, layer: Any) -> tuple[str, Fix] | None:
    """A Backbone with weights "none" transfers nothing (TRANSFER)."""
    if layer.type != "Backbone" or trace.spec is None:
        return None
    if trace.spec["layers"][layer.index].get("weights", "imagenet") != "none":
        return None
    message = (
        'weights "none": the backbone starts from random weights, so nothing is transferred '
        'and it trains like any model from scratch. "imagenet" starts from torchvision\'s '
        "pretrained weights."
    )
    return message, Fix(label="Use the ImageNet weights", set_args={"weights": "imagenet"})


def _mode_of(trace: Trace, index: int) -> str:
    """The mode a traced SequencePool was built with (its default when the spec gives none)."""
    for step in trace.steps:
        if step.index == index:
            return str(step.construct.kwargs.get("mode", "last"))
    return "last"
