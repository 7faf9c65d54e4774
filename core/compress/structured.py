"""Structured pruning: channels and units physically removed, written back as a smaller spec.

Torch-Pruning's dependency graph (DepGraph) finds which layers must lose the same channels
(a convolution, its BatchNorm and the next layer's inputs; every branch of a residual `Add`;
the parts of a `Concat`); its magnitude pruner removes the weakest `ratio` of each group.
The pruned modules are then read back into the spec (`out_channels`, `out_features`,
`hidden_size`, `dim_feedforward`, `embedding_dim`), the spec is rebuilt by the studio's own
builder and the pruned weights are loaded into it, so the result opens in Build, trains,
explains and exports like any other model. The output head keeps one output per class.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch_pruning as tp
from torch import nn

from core.builder import SpecModel, build_model
from core.compress.recurrent import (
    RECURRENT_TYPES,
    RecurrentPruner,
    opaque_recurrent,
    recurrent_limit,
)
from core.errors import CompressError, SpecError
from core.facts import ModelFacts
from core.spec import read_document, resolve_graph
from core.studio_layers import PositionalEncoding, Reshape

CONV_TYPES = (nn.Conv1d, nn.Conv2d)
MHA = nn.MultiheadAttention
ROOT_TYPES = (*CONV_TYPES, nn.Linear, nn.Embedding, *RECURRENT_TYPES)
# arguments the builder infers from the incoming tensor: stale once the input shrinks
INFERRED = ("in_channels", "in_features", "input_size", "num_features", "embed_dim", "d_model")
SAME_OUTPUT_TOLERANCE = 1e-4  # rebuilt vs pruned model, largest absolute output difference


@dataclass
class LayerChange:
    """One spec layer whose size changed: {"out_channels": (32, 16)} = before, after."""

    index: int
    name: str
    type: str
    sizes: dict[str, tuple[int, int]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "type": self.type,
            "sizes": {k: list(v) for k, v in self.sizes.items()},
        }


@dataclass
class KeptLayer:
    """A layer whose outputs were not pruned, and why (said to the person)."""

    name: str
    type: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type, "reason": self.reason}


@dataclass
class StructuredResult:
    """The pruned model (built from `spec`, pruned weights loaded) and what happened."""

    model: SpecModel
    spec: dict[str, Any]
    ratio: float
    changes: list[LayerChange] = field(default_factory=list)
    kept: list[KeptLayer] = field(default_factory=list)
    max_abs_diff: float = 0.0  # rebuilt model vs the pruned modules, same input

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "structured",
            "ratio": self.ratio,
            "changes": [c.to_dict() for c in self.changes],
            "kept": [k.to_dict() for k in self.kept],
            "max_abs_diff": self.max_abs_diff,
        }


def check_ratio(ratio: Any) -> float:
    """A pruning ratio is a share of channels or weights to remove: 0 < ratio < 1."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise CompressError(
            f"the pruning ratio {ratio!r} is not a number; give a share to remove between 0 "
            "and 1, e.g. 0.5 for half"
        ) from None
    if not 0.0 < value < 1.0:
        raise CompressError(
            f"the pruning ratio {ratio!r} is outside (0, 1); give the share to remove, "
            "e.g. 0.5 removes half (0 would change nothing, 1 would remove everything)"
        )
    return value


def prune_structured(
    model: SpecModel, spec: dict[str, Any], facts: ModelFacts, ratio: float
) -> StructuredResult:
    """Remove `ratio` of the channels / units of every prunable group of `model` (built from
    `spec` for `facts`; not modified) and return the smaller spec with its model."""
    ratio = check_ratio(ratio)
    pruned = copy.deepcopy(model).eval()
    graph = resolve_graph(read_document(spec).layers)
    kept, ignored = _kept_layers(pruned, graph)
    positions = [  # learned positions (time, features): pruned along their features
        (m.position, 1)
        for m in pruned.modules()
        if isinstance(m, PositionalEncoding) and isinstance(m.position, nn.Parameter)
    ]
    example = _example_input(pruned, facts)
    recurrent = RecurrentPruner()
    with warnings.catch_warnings(), opaque_recurrent(pruned):
        warnings.simplefilter("ignore")  # Torch-Pruning's notes on unwrapped parameters
        pruner = tp.pruner.MetaPruner(
            pruned,
            example,
            importance=tp.importance.MagnitudeImportance(p=2),
            pruning_ratio=ratio,
            ignored_layers=ignored,
            unwrapped_parameters=positions,
            root_module_types=list(ROOT_TYPES),
            customized_pruners={t: recurrent for t in RECURRENT_TYPES},
        )
    pruner.step()
    new_spec, changes = _written_back(spec, graph, pruned)
    if not changes:
        reasons = "; ".join(f"{k.name}: {k.reason}" for k in kept)
        raise CompressError(
            f"nothing in this model can be pruned at {ratio:.0%} ({reasons}); structured "
            "pruning needs a hidden layer (a convolution, a Linear before the last one, a "
            "recurrent layer), or use --unstructured"
        )
    try:
        rebuilt = build_model(new_spec, facts)
        rebuilt.load_state_dict(pruned.state_dict())
    except (SpecError, RuntimeError) as error:
        raise CompressError(
            f"the pruned model could not be written back as a spec ({error}); "
            "this is a bug in the pruning of this architecture, please report it"
        ) from None
    rebuilt.eval()
    with torch.no_grad():
        difference = (rebuilt(example) - pruned(example)).abs().max().item()
    if difference > SAME_OUTPUT_TOLERANCE:
        raise CompressError(
            f"the spec written back from the pruned model computes something else "
            f"(outputs differ by {difference:.2g}); please report this architecture"
        )
    return StructuredResult(rebuilt, new_spec, ratio, changes, kept, difference)


def _example_input(model: SpecModel, facts: ModelFacts) -> torch.Tensor:
    shape = (2, *model.input_shape)
    if model.input_dtype == torch.int64:  # token ids, within the vocabulary
        return torch.randint(0, max(2, facts.vocab_size or model.vocab_size or 2), shape)
    return torch.randn(shape, generator=torch.Generator().manual_seed(0))


def _kept_layers(model: SpecModel, graph: Any) -> tuple[list[KeptLayer], list[nn.Module]]:
    """Layers whose outputs must keep their size, with the reason in words, and the modules
    Torch-Pruning must leave alone for it."""
    by_name = dict(model.named_children())
    kept: dict[str, KeptLayer] = {}
    ignored: list[nn.Module] = []

    def keep(name: str, reason: str, module: nn.Module | None = None) -> None:
        if name not in kept:
            kept[name] = KeptLayer(name, graph.types[graph.names.index(name)], reason)
            ignored.append(module if module is not None else by_name[name])

    keep(model._output, "it is the output layer: it keeps one output per class")
    for index, name in enumerate(graph.names):
        module = by_name.get(name)
        if isinstance(module, RECURRENT_TYPES) and (why := recurrent_limit(module)):
            keep(name, why)
        if isinstance(module, CONV_TYPES) and 1 < module.groups != module.in_channels:
            keep(name, f"it is a grouped convolution (groups={module.groups})")
        attention = [m for m in (module.modules() if module else ()) if isinstance(m, MHA)]
        if attention:
            keep(
                name,
                "its attention heads split the features into equal blocks, and Torch-Pruning's "
                "head-aware pruning covers separate q/k/v projections, not PyTorch's packed "
                "MultiheadAttention: the features it reads and writes keep their size",
                attention[0],
            )
        if isinstance(module, PositionalEncoding) and module.kind != "learned":
            for producer in _producers(graph, index, by_name):
                keep(
                    producer,
                    f"its features feed the sinusoidal PositionalEncoding {name}, whose fixed "
                    f"table is built for {module.position.shape[1]} features "
                    "(a learned one can be pruned)",
                )
        if isinstance(module, Reshape):
            for producer in _producers(graph, index, by_name):
                keep(
                    producer,
                    f"its output is reshaped by {name} to the fixed shape {list(module.shape)}",
                )
    return list(kept.values()), ignored


def _producers(graph: Any, index: int, by_name: dict[str, nn.Module]) -> list[str]:
    """The nearest layers upstream of layer `index` that have prunable outputs."""
    found: list[str] = []
    stack = list(graph.sources[index])
    seen: set[int] = set()
    while stack:
        source = stack.pop()
        if source == -1 or source in seen:
            continue
        seen.add(source)
        name = graph.names[source]
        module = by_name.get(name)
        if isinstance(module, ROOT_TYPES) or any(
            isinstance(m, ROOT_TYPES) for m in module.modules()
        ):
            found.append(name)
        else:
            stack.extend(graph.sources[source])
    return found


def _written_back(
    spec: dict[str, Any], graph: Any, model: nn.Module
) -> tuple[dict[str, Any], list[LayerChange]]:
    """`spec` with each layer's size arguments read from its pruned module."""
    new_spec = copy.deepcopy(spec)
    changes: list[LayerChange] = []
    modules = dict(model.named_children())
    for index, layer in enumerate(new_spec["layers"]):
        module = modules.get(graph.names[index])
        if module is None:
            continue
        sizes = _sizes(module)
        changed = {}
        for key, value in sizes.items():
            before = layer.get(key)
            if before is None and key != "groups":
                before = _original_size(spec, index, key, module)
            if before is not None and before != value:
                changed[key] = (int(before), int(value))
                layer[key] = value
        for key in INFERRED:
            layer.pop(key, None)  # the builder infers them again from the smaller input
        if changed:
            changes.append(LayerChange(index, graph.names[index], layer["type"], changed))
    return new_spec, changes


def _sizes(module: nn.Module) -> dict[str, int]:
    if isinstance(module, CONV_TYPES):
        sizes = {"out_channels": module.out_channels}
        if module.groups > 1:  # depthwise: one group per channel, as many as remain
            sizes["groups"] = module.groups
        return sizes
    if isinstance(module, nn.Linear):
        return {"out_features": module.out_features}
    if isinstance(module, RECURRENT_TYPES):
        return {"hidden_size": module.hidden_size}
    if isinstance(module, nn.Embedding):
        return {"embedding_dim": module.embedding_dim}
    if isinstance(module, nn.TransformerEncoderLayer):
        return {"dim_feedforward": module.linear1.out_features}
    return {}


def _original_size(spec: dict[str, Any], index: int, key: str, module: nn.Module) -> int | None:
    """A size the spec left to its default (or to the number of classes): the layer's own
    default from the registry, so a change from it is still written."""
    from core.layers import LAYERS

    layer_type = LAYERS.get(spec["layers"][index].get("type"))
    if layer_type is None:
        return None
    for param in layer_type.params:
        if param.name == key and param.default is not None:
            return int(param.default)
    return None
