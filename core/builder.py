"""Spec -> per-layer trace (shape, parameters, FLOPs) and spec -> `nn.Module`.

The trace runs every layer on PyTorch's meta device: real modules and real shape rules, but no
weights are allocated and nothing is computed, so checking a model of any size is instant.
FLOPs come from `torch.utils.flop_counter` (per sample, forward pass).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from core.errors import SpecError
from core.facts import ModelFacts
from core.layers import LAYERS, Construct, LayerContext, LayerProblem
from core.layers.shapes import fmt
from core.limits import SizeBudget
from core.spec import (
    INPUT,
    check_shape,
    layer_arguments,
    layer_error,
    read_document,
    resolve_graph,
    validate_spec,
)
from core.studio_layers import SelfAttention

POOLING_TYPES = {"MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d"}


@dataclass
class LayerTrace:
    """One traced layer: its output shape (batch excluded), parameters and FLOPs per sample."""

    index: int
    type: str
    id: str | None
    name: str  # attribute name in the built model and the exported code
    inputs: list[str]  # names of the values it reads ("input" = the model input)
    output_shape: tuple[int, ...]
    params: int
    flops: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "type": self.type,
            "id": self.id,
            "name": self.name,
            "inputs": list(self.inputs),
            "output_shape": list(self.output_shape),
            "params": self.params,
            "flops": self.flops,
        }


@dataclass
class Step:
    """What the model builder and codegen need for one layer, beyond its trace."""

    index: int
    name: str
    type: str
    sources: list[str]
    construct: Construct
    output_shape: tuple[int, ...]


@dataclass
class Trace:
    """The result of tracing a spec. `ok` is False when `error` stopped it; the layers traced
    before the error keep their shapes (in execution order).

    An ok trace is everything needed to build the model (`model_from_trace`) or write its
    code, so a launch traces once and passes the trace on."""

    ok: bool
    layers: list[LayerTrace]
    params: int
    flops: int
    error: SpecError | None
    # the facts traced against, resolved: the input shape (from the data or the spec; None
    # until the document is read) and "text" when an Embedding reads the model input
    facts: ModelFacts = field(default_factory=ModelFacts)
    name: str = "model"
    finished: bool = False  # traced as strictly as training needs (one score per class)
    spec: dict[str, Any] | None = None  # the normalized spec, when ok
    output: str | None = None  # name of the value the model returns (the last layer)
    steps: list[Step] = field(default_factory=list, repr=False)

    @classmethod
    def failed(cls, error: SpecError) -> Trace:
        """A trace stopped before any layer (a spec file that cannot be read)."""
        return cls(ok=False, layers=[], params=0, flops=0, error=error)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        return self.facts.input_shape

    @property
    def input_dtype(self) -> torch.dtype:
        return self.facts.input_dtype

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        by_name = {layer.name: layer for layer in self.layers}
        return by_name[self.output].output_shape if self.ok and self.output else None

    def to_dict(self) -> dict[str, Any]:
        """The `studio check --json` document."""
        error = None if self.error is None else str(self.error)
        return {
            "ok": self.ok,
            "name": self.name,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "layers": [layer.to_dict() for layer in self.layers],
            "params": self.params,
            "flops": self.flops,
            "output_shape": list(self.output_shape) if self.output_shape else None,
            "error": error,
            "error_layer": None
            if self.error is None or self.error.index is None
            else {
                "index": self.error.index,
                "type": self.error.layer_type,
                "id": self.error.layer_id,
            },
        }


def trace(
    spec: dict[str, Any], facts: ModelFacts | None = None, *, finished: bool = False
) -> Trace:
    """Shapes, parameter counts and FLOPs of every layer, without allocating weights.

    `facts` come from the dataset when there is one (a spec `input_shape` that disagrees is an
    error; a model ending in a Linear must then output (num_classes,), and with `finished` any
    model must, as training needs). Never raises for spec problems: the first one stops the
    trace and is returned as `Trace.error`.
    """
    facts = facts or ModelFacts()
    result = Trace(
        ok=False,
        layers=[],
        params=0,
        flops=0,
        error=None,
        facts=replace(facts, input_shape=None),
        finished=finished,
    )
    try:
        document = read_document(spec)
        result.name = document.name
        facts = replace(
            facts, input_shape=resolve_input_shape(document.input_shape, facts.input_shape)
        )
    except SpecError as error:
        result.error = error
        return result
    graph = resolve_graph(document.layers)
    feeds_input = [i for i, sources in graph.sources.items() if -1 in sources]
    if facts.modality is None and any(graph.types[i] == "Embedding" for i in feeds_input):
        facts = facts.with_text_input()  # a typed-in shape read by an Embedding: token ids
    result.facts = facts
    input_dtype = facts.input_dtype
    num_classes = facts.num_classes
    linear_indices = [i for i, t in enumerate(graph.types) if t == "Linear"]
    last_linear = linear_indices[-1] if linear_indices else None

    values: dict[int, torch.Tensor] = {
        -1: torch.empty((1, *facts.input_shape), dtype=input_dtype, device="meta")
    }
    pooled: dict[int, bool] = {-1: False}
    # parameters and activations past the settings' limits stop the trace at that layer
    budget = SizeBudget.from_settings(_bytes(values[-1]))
    for index in graph.order:
        layer = document.layers[index]
        layer_type = LAYERS[layer["type"]]
        layer_id = graph.ids[index]
        name = graph.names[index]
        sources = graph.sources[index]
        source_names = [INPUT if s == -1 else graph.names[s] for s in sources]
        # messages name a source as the person wrote it: its id, else its name in the table
        shown_sources = [INPUT if s == -1 else graph.ids[s] or graph.names[s] for s in sources]
        try:
            args = layer_type.normalize(layer_arguments(layer))
            if len(sources) > 1 and not layer_type.merge:
                raise LayerProblem(
                    f'it takes one input but "inputs" lists {len(sources)} '
                    f"({', '.join(shown_sources)}); merge them first with an Add or Concat layer"
                )
            if -1 in sources and input_dtype != torch.float32 and layer_type.name != "Embedding":
                raise LayerProblem(
                    "the input is token ids (whole numbers), which only an Embedding layer can "
                    'read; start the model with {"type": "Embedding", "embedding_dim": 64}'
                )
            context = LayerContext(
                shapes=[tuple(values[s].shape[1:]) for s in sources],
                dtype=values[sources[0]].dtype,
                num_classes=num_classes,
                vocab_size=facts.vocab_size,
                is_last_linear=index == last_linear,
                after_pooling=any(pooled[s] for s in sources),
                sources=shown_sources,
            )
            construct = layer_type.make(args, context)
            output, params, flops = run_on_meta(construct, [values[s] for s in sources], context)
            budget.add(params, _bytes(output))
        except LayerProblem as problem:
            result.error = layer_error(index, layer_type.name, layer_id, str(problem))
            break
        values[index] = output
        pooled[index] = any(pooled[s] for s in sources) or (
            layer_type.name in POOLING_TYPES or _strided(args)
        )
        shape = tuple(output.shape[1:])
        result.layers.append(
            LayerTrace(index, layer_type.name, layer_id, name, source_names, shape, params, flops)
        )
        result.steps.append(Step(index, name, layer_type.name, source_names, construct, shape))
        result.params += params
        result.flops += flops
    else:
        result.error = graph.problem
    if result.error is None and len(graph.order) == len(document.layers):
        last = len(document.layers) - 1
        # a model that already ends in its Linear head must give one score per class; one
        # still being assembled (ending in a Conv, an Add...) is not an error yet, unless it is
        # about to be trained (`finished`)
        if graph.types[last] == "Linear" or finished:
            result.error = check_output(result.layers, last, num_classes)
        if result.error is None:
            result.spec, result.error = _normalized(spec)
        result.ok = result.error is None
        result.output = graph.names[last] if result.ok else None
    elif result.error is None:  # defensive: every stop should carry its reason
        result.error = SpecError("the spec's layers could not all be ordered")
    return result


def _normalized(spec: dict[str, Any]) -> tuple[dict[str, Any] | None, SpecError | None]:
    """The spec as `validate_spec` normalizes it (the trace has made the same checks, so this
    only copies and fills in; an error is still reported rather than raised)."""
    try:
        return validate_spec(spec), None
    except SpecError as error:
        return None, error


def check_output(layers: list[LayerTrace], last: int, num_classes: int | None) -> SpecError | None:
    """With a dataset, the model must end with one score per class (or output): (num_classes,)."""
    if num_classes is None:
        return None
    final = next(layer for layer in layers if layer.index == last)
    shape = final.output_shape
    if shape == (num_classes,):
        return None
    if len(shape) == 1:
        fix = (
            f"end with a Linear of out_features={num_classes}, or leave out_features out on "
            "the last Linear"
        )
    elif len(shape) == 2:
        fix = 'add {"type": "SequencePool"} (or a Flatten) before the last Linear'
    else:
        fix = 'add {"type": "Flatten"} and a Linear at the end'
    return layer_error(
        final.index,
        final.type,
        final.id,
        f"the model ends with {fmt(shape)} per sample but the data needs one score per class, "
        f"({num_classes},); {fix}",
    )


def resolve_input_shape(
    spec_shape: tuple[int, ...] | None, given: tuple[int, ...] | list[int] | None
) -> tuple[int, ...]:
    if given is not None:
        given = check_shape(given, "the input shape")
        if spec_shape is not None and spec_shape != given:
            raise SpecError(
                f"the spec's input_shape {list(spec_shape)} conflicts with the data's sample "
                f"shape {list(given)}; remove input_shape from the spec or make them equal"
            )
        return given
    if spec_shape is None:
        raise SpecError(
            'the spec has no input_shape and no dataset was given; add "input_shape", e.g. '
            "[3, 32, 32] (batch excluded), or pass --dataset NAME or --input-shape"
        )
    return spec_shape


def run_on_meta(
    construct: Construct, inputs: list[torch.Tensor], context: LayerContext
) -> tuple[torch.Tensor, int, int]:
    """Instantiate the layer on the meta device and run it: output, parameters, FLOPs.

    Element-wise layers (activations, dropout, normalization, Add) keep their input's shape
    and do no matrix work: their module is built (for its parameters) but not run, because
    PyTorch's meta versions of these ops are decompositions in Python, slower than the
    convolutions themselves.
    """
    steps = 1
    if construct.stepwise:  # (batch, time, features): one step costs the same as any other
        steps = inputs[0].shape[1]
        inputs = [inputs[0][:, :1]]
    flops = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.device("meta"):
                module = construct.cls(**construct.kwargs)
            module.eval()
            if construct.elementwise:
                output = inputs[0]
            else:
                with FlopCounterMode(display=False) as counter:
                    output = module(*inputs)
                flops = counter.get_total_flops()
    except Exception as error:  # PyTorch's own checks: translated, never shown raw
        received = " and ".join(fmt(s) for s in context.shapes)
        text = str(error).strip()
        reason = text.splitlines()[0][:200] if text else type(error).__name__
        raise LayerProblem(
            f"PyTorch cannot apply it to the {received} input it receives ({reason})"
        ) from None
    if construct.tuple_output:
        output = output[0]
    if construct.stepwise:
        output = output.expand(output.shape[0], steps, *output.shape[2:])
    params = sum(p.numel() for p in module.parameters())
    return output, int(params), int(flops) * steps


def _bytes(value: torch.Tensor) -> int:
    return value.numel() * value.element_size()


def _strided(args: dict[str, Any]) -> bool:
    stride = args.get("stride", 1)
    return any(s > 1 for s in (stride if isinstance(stride, tuple) else (stride or 1,)))


class SpecModel(nn.Module):
    """The model a spec describes: a plain `nn.Module` whose layers are named attributes
    (conv1, relu1, ... or the spec's ids) and whose forward runs the spec's graph.

    `model.spec` (normalized spec) and `model.facts` (what it reads and scores: input shape,
    classes, vocabulary, input dtype: float32, or int64 token ids for text), also readable as
    `model.input_shape`, `model.num_classes`, `model.vocab_size`, `model.input_dtype`. Set
    `model.record_attention = True` to keep each MultiheadAttention layer's weights after a
    forward: `model.attention_maps()` -> {name: (batch, heads, time, time)}.
    """

    def __init__(self, traced: Trace) -> None:
        super().__init__()
        if not traced.ok:
            raise traced.error or SpecError("the spec cannot be built")
        self.spec = traced.spec
        self.output_shape = traced.output_shape
        outputs = traced.output_shape or ()
        # the classes it scores: from the dataset, else the size of a flat output
        classes = traced.facts.num_classes or (outputs[0] if len(outputs) == 1 else None)
        self.facts = replace(traced.facts, num_classes=classes)
        for step in traced.steps:
            self.add_module(step.name, step.construct.cls(**step.construct.kwargs))
        self._plan = [(s.name, tuple(s.sources), s.construct.tuple_output) for s in traced.steps]
        self._output = traced.output
        # blocks the spec marks "frozen": no gradient, left out of the optimizer, and kept in
        # eval mode (BatchNorm statistics and dropout) even while the model trains
        layers = (self.spec or {}).get("layers", [])
        self.frozen_blocks = tuple(s.name for s in traced.steps if layers[s.index].get("frozen"))
        for name in self.frozen_blocks:
            self._modules[name].requires_grad_(False)

    def train(self, mode: bool = True) -> SpecModel:
        super().train(mode)
        for name in self.frozen_blocks:
            self._modules[name].eval()
        return self

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.facts.input_shape

    @property
    def num_classes(self) -> int | None:
        return self.facts.num_classes

    @property
    def vocab_size(self) -> int | None:
        return self.facts.vocab_size

    @property
    def input_dtype(self) -> torch.dtype:
        return self.facts.input_dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {INPUT: x}
        for name, sources, tuple_output in self._plan:
            output = self._modules[name](*(values[s] for s in sources))
            values[name] = output[0] if tuple_output else output
        return values[self._output]

    @property
    def record_attention(self) -> bool:
        return any(m.need_weights for m in self.modules() if isinstance(m, SelfAttention))

    @record_attention.setter
    def record_attention(self, value: bool) -> None:
        for module in self.modules():
            if isinstance(module, SelfAttention):
                module.need_weights = bool(value)
                if not value:
                    module.last_attention = None

    def attention_maps(self) -> dict[str, torch.Tensor]:
        """{layer name: (batch, heads, time, time)} from the last forward with recording on."""
        return {
            name: module.last_attention
            for name, module in self.named_modules()
            if isinstance(module, SelfAttention) and module.last_attention is not None
        }


def check_model(
    spec: dict[str, Any], facts: ModelFacts | None = None, *, finished: bool = False
) -> Trace:
    """The spec's trace, ok (its `spec` normalized); raises the first SpecError instead of
    returning it. `finished`: as strict as training (one score per class)."""
    traced = trace(spec, facts, finished=finished)
    if not traced.ok:
        raise traced.error or SpecError("the spec cannot be built")
    return traced


def model_from_trace(traced: Trace) -> SpecModel:
    """Build from a trace already made (`check_model(..., finished=True)`), without tracing
    again: a launch checks once and builds from that check."""
    if not traced.finished:
        raise ValueError("build from a trace made with finished=True, as training needs")
    return SpecModel(traced)


def build_model(spec: dict[str, Any], facts: ModelFacts | None = None) -> SpecModel:
    """The spec as a trainable `SpecModel` (weights initialized by PyTorch's defaults, on the
    CPU); raises SpecError naming the first layer that cannot be built, or the last layer when
    `facts.num_classes` is given and the model does not end with (num_classes,)."""
    # training needs one score per class whatever the last layer is
    return model_from_trace(check_model(spec, facts, finished=True))
