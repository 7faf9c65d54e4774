"""The layer registry: layer type -> family, plain description, parameter schema, builder.

One source of truth: the builder validates a spec layer against the same `ParamSpec`s the Build
page turns into form widgets. A family module registers each type with `@register(...)` on a
small function that reads the incoming shape and returns the module class and its arguments.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import torch
from torch import nn

from core.errors import SpecError

FAMILIES = ("CNN", "RNN", "Attention", "Common")
KINDS = ("int", "float", "bool", "choice", "int_list", "str")


class LayerProblem(Exception):
    """Why one layer cannot be built; the builder prefixes it with the layer's index/type/id."""


@dataclass(frozen=True)
class ParamSpec:
    """One keyword argument of a layer type, typed and bounded, with help for the Build page."""

    name: str
    kind: str  # one of KINDS
    default: Any = None  # what the layer uses when the spec leaves it out (or the UI pre-fills)
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # for kind "choice"
    help: str = ""
    required: bool = False  # the spec must give it; `default` is only a suggestion for forms
    nullable: bool = False  # None is allowed (it then means what `help` says: "same as ...")
    tuple_len: int = 0  # kind "int" also accepts a list of this many ints, e.g. [height, width]
    words: tuple[str, ...] = ()  # strings accepted besides numbers, e.g. padding "same"

    def allowed(self) -> str:
        """What values are allowed, in words, for error messages and tooltips."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "int_list":
            return "a list of whole numbers"
        if self.kind == "str":
            return "text"
        noun = "a whole number" if self.kind == "int" else "a number"
        if self.minimum is not None and self.maximum is not None:
            text = f"{noun} from {_num(self.minimum)} to {_num(self.maximum)}"
        elif self.minimum is not None:
            text = f"{noun} ≥ {_num(self.minimum)}"
        elif self.maximum is not None:
            text = f"{noun} ≤ {_num(self.maximum)}"
        else:
            text = noun
        if self.tuple_len:
            text += f" (or a list of {self.tuple_len})"
        if self.words:
            text += " or " + " / ".join(repr(w) for w in self.words)
        if self.nullable:
            text += " or null"
        return text

    def check(self, value: Any) -> Any:
        """The value normalized (ints as floats for float params, lists as tuples).

        Raises LayerProblem naming the argument, the value and what is allowed.
        """
        if value is None:
            if self.nullable:
                return None
            raise self._bad(value)
        if self.words and isinstance(value, str):
            if value in self.words:
                return value
            raise self._bad(value)
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise self._bad(value)
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise self._bad(value)
        if self.kind == "str":
            if isinstance(value, str):
                return value
            raise self._bad(value)
        if self.kind == "int_list":
            if isinstance(value, list | tuple) and all(_is_int(v) for v in value):
                return tuple(int(v) for v in value)
            raise self._bad(value)
        if self.kind == "int":
            if self.tuple_len and isinstance(value, list | tuple):
                if len(value) != self.tuple_len or not all(_is_int(v) for v in value):
                    raise self._bad(value)
                return tuple(self._in_range(int(v), value) for v in value)
            if not _is_int(value):
                raise self._bad(value)
            return self._in_range(int(value), value)
        # float: NaN and infinities (JSON's NaN, Infinity, 1e400) pass no range check, so
        # they are refused here, before training or exported code meets them
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(value)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any float
            raise self._bad(value) from None
        if not math.isfinite(number):
            raise self._bad(value)
        return self._in_range(number, value)

    def _in_range(self, number: float, shown: Any) -> Any:
        low_bad = self.minimum is not None and number < self.minimum
        high_bad = self.maximum is not None and number > self.maximum
        if low_bad or high_bad:
            raise LayerProblem(f"{self.name}={_show(shown)} is out of range; use {self.allowed()}")
        return number

    def _bad(self, value: Any) -> LayerProblem:
        return LayerProblem(f"{self.name}={_show(value)} is not allowed; use {self.allowed()}")


@dataclass(frozen=True)
class Construct:
    """How to make one layer's module: its class and keyword arguments (inferred ones included).

    The builder instantiates it (on the meta device for traces) and codegen writes it out as
    `cls(**kwargs)`, so the built model and the exported file agree by construction.
    """

    cls: type[nn.Module]
    kwargs: dict[str, Any]
    tuple_output: bool = False  # the module returns (output, state): keep only the output
    # same work at every time step: the trace runs one step and scales (meta RNNs are slow)
    stepwise: bool = False
    # keeps its input's shape and does no matrix work (activations, norms, dropout, Add)
    elementwise: bool = False


@dataclass
class LayerContext:
    """What a layer's builder knows about where it sits: its input shapes (batch excluded)."""

    shapes: list[tuple[int, ...]]
    dtype: torch.dtype = torch.float32
    num_classes: int | None = None
    vocab_size: int | None = None
    is_last_linear: bool = False
    after_pooling: bool = False  # a pooling or strided layer runs before this one
    sources: list[str] = field(default_factory=list)  # names of the inputs, for messages

    @property
    def shape(self) -> tuple[int, ...]:
        return self.shapes[0]


Maker = Callable[[dict[str, Any], LayerContext], Construct]


@dataclass(frozen=True)
class LayerType:
    """A layer type the studio knows: what it is for, its arguments, how to build it."""

    name: str
    family: str  # one of FAMILIES
    description: str  # one plain-language line for people who are not engineers
    params: tuple[ParamSpec, ...]
    make: Maker
    short: str  # stem of attribute names in built models: conv -> conv1, conv2 ...
    inferred: tuple[str, ...] = ()  # arguments that follow from the input; never required
    merge: bool = False  # takes several inputs (Add, Concat)
    sequence_only: bool = False  # batch_first is implied and may only be given as true

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def normalize(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check the spec's arguments (names, types, ranges); shapes are checked later.

        Returns the arguments as given, normalized; raises LayerProblem.
        """
        known = {p.name: p for p in self.params}
        result: dict[str, Any] = {}
        for key, value in args.items():
            if key in known:
                result[key] = known[key].check(value)
            elif key in self.inferred:
                result[key] = value  # checked against the input by the maker
            elif key == "batch_first" and self.sequence_only:
                if value is not True:
                    raise LayerProblem(
                        "batch_first is always true in the studio (sequences are shaped "
                        "(time, features) after the batch); remove it"
                    )
            else:
                raise LayerProblem(self._unknown_argument(key))
        for spec in self.params:
            if spec.required and key_missing(result, spec.name):
                raise LayerProblem(
                    f"missing argument {spec.name} ({spec.help.rstrip('.')}); "
                    f'for example "{spec.name}": {_show(spec.default)}'
                )
        return result

    def construct(self, args: dict[str, Any], context: LayerContext) -> Construct:
        """Validated arguments + input shapes -> module class and full keyword arguments."""
        return self.make(self.normalize(args), context)

    def build(self, args: dict[str, Any], context: LayerContext) -> nn.Module:
        """A real module for this layer (on the current default device)."""
        made = self.construct(args, context)
        return made.cls(**made.kwargs)

    def _unknown_argument(self, key: str) -> str:
        allowed = [p.name for p in self.params]
        close = difflib.get_close_matches(key, allowed + list(self.inferred), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        listed = ", ".join(allowed) if allowed else "none"
        text = f"unknown argument {key!r}{hint}; {self.name} takes: {listed}"
        if self.inferred:
            text += f" ({', '.join(self.inferred)} inferred from its input)"
        return text


def key_missing(args: dict[str, Any], name: str) -> bool:
    return name not in args or args[name] is None


LAYERS: dict[str, LayerType] = {}


def register(
    name: str,
    *,
    family: str,
    description: str,
    params: tuple[ParamSpec, ...] | list[ParamSpec] = (),
    short: str,
    inferred: tuple[str, ...] = (),
    merge: bool = False,
    sequence_only: bool = False,
) -> Callable[[Maker], Maker]:
    """Decorator: register `make(args, context) -> Construct` as layer type `name`."""
    assert family in FAMILIES, family

    def decorate(make: Maker) -> Maker:
        assert name not in LAYERS, f"layer type {name} registered twice"
        LAYERS[name] = LayerType(
            name=name,
            family=family,
            description=description,
            params=tuple(params),
            make=make,
            short=short,
            inferred=inferred,
            merge=merge,
            sequence_only=sequence_only,
        )
        return make

    return decorate


def get_layer(name: str) -> LayerType:
    """The registered layer type `name`; SpecError with the closest known names otherwise."""
    if isinstance(name, str) and name in LAYERS:
        return LAYERS[name]
    raise SpecError(unknown_type_message(name))


# names people reach for that the studio handles another way
NOT_LAYERS = {
    "Softmax": "the training loss applies softmax itself, so end with a Linear; remove it",
    "LogSoftmax": "the training loss applies it itself, so end with a Linear; remove it",
    "Dense": 'use "Linear" (out_features = units)',
    "Input": 'give the spec an "input_shape" instead (batch excluded)',
    "Sequential": 'list the layers directly in "layers"',
}


def unknown_type_message(name: Any) -> str:
    known = sorted(LAYERS)
    if not isinstance(name, str):
        return f'layer type must be text such as "Conv2d", not {_show(name)}'
    if name in NOT_LAYERS:
        return f"{name} is not a studio layer: {NOT_LAYERS[name]}"
    same_case = [k for k in known if k.lower() == name.lower()]
    close = same_case + [
        k for k in difflib.get_close_matches(name, known, n=3, cutoff=0.6) if k not in same_case
    ]
    if close:
        return f"unknown layer type {name!r}; did you mean {' or '.join(close[:3])}?"
    return f"unknown layer type {name!r}; known types: {', '.join(known)}"


def visible(text: str) -> str:
    """`text` with line breaks, control and unprintable characters written as escapes (\\n,
    \\x00, \\ud800), so a message quoting a spec's string stays one printable line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, str):
        return f'"{visible(value[:80])}"' if len(value) <= 80 else f'"{visible(value[:80])}..."'
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"{Decimal(value):.3e}"  # str() of a 5000-digit integer fails
    text = str(value)
    return text if len(text) <= 80 else text[:80] + "..."
