"""The model-spec document (JSON): reading it, checking its structure, resolving its graph.

A spec is `{"name", "input_shape" (optional, batch excluded), "layers": [...]}`; each layer is
`{"type": <PyTorch class name>, <its keyword arguments>..., "id"?, "inputs"?}`. A layer without
`inputs` takes the previous layer's output (the first one takes the model input); the reserved
id "input" names the model input. Layers are numbered from 0, as in the JSON list.
Shapes are checked by `core.builder.trace`; this module checks everything that needs no shape.
"""

from __future__ import annotations

import copy
import difflib
import heapq
import json
import keyword
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from torch import nn

from core.config import get_settings
from core.errors import SpecError
from core.layers import LAYERS, LayerProblem
from core.layers.registry import unknown_type_message, visible
from core.limits import check_spec_limits, text_depth, too_deep, too_large

INPUT = "input"  # the reserved id (and value name) of the model input
CONTRACT_KEYS = ("name", "input_shape", "layers")
# every other key of a layer is an argument; "frozen" (an extension: its weights stay as
# loaded during training) is validated in read_header
LAYER_KEYS = ("type", "id", "inputs", "frozen")
# names a layer attribute may not take: they belong to nn.Module, SpecModel or generated code
RESERVED_NAMES = (
    frozenset(dir(nn.Module))
    | frozenset(vars(nn.Module()))
    | {
        "spec",
        "input_shape",
        "num_classes",
        "input_dtype",
        "vocab_size",
        "output_shape",
        "record_attention",
        "attention_maps",
        "frozen_blocks",
        "x",
        "x_in",
        "self",
        "torch",
        "nn",
        "math",
        "inputs",
    }
)
MAX_SAMPLE_ELEMENTS = 2**31 - 1  # numbers in one input sample; far beyond any real sample


def load_spec(path: str | Path) -> dict[str, Any]:
    """Read a spec file; SpecError naming the file (and line/column for bad JSON).

    At most `max_spec_bytes` are read (so /dev/zero or a 54 MB file is refused at once); the
    JSON is then checked for depth and size by `parse_spec_text`. The layers are checked by
    `validate_spec` or `core.builder.trace`.
    """
    path = Path(path)
    limit = get_settings().max_spec_bytes
    try:
        with path.open("rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such spec file") from None
    except OSError as error:
        raise SpecError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > limit:
        size = path.stat().st_size if path.is_file() else 0
        raise SpecError(f"{path}: {f'{size:,} bytes, ' if size else ''}{too_large(limit)}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SpecError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "a spec is a JSON text file"
        ) from None
    spec = parse_spec_text(text, source=str(path))
    if not isinstance(spec, dict):
        raise SpecError(f'{path}: a spec is a JSON object with "layers", not {type(spec).__name__}')
    return spec


def parse_spec_text(text: str | bytes, *, source: str = "the spec") -> Any:
    """JSON text -> the document, refusing (SpecError naming `source`) text over
    `max_spec_bytes`, nesting over `max_spec_depth` and more than `max_spec_layers` layers;
    bad JSON is named by line and column."""
    settings = get_settings()
    if len(text) > settings.max_spec_bytes:
        raise SpecError(f"{source}: {too_large(settings.max_spec_bytes)}")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(
            f"{source}: not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:  # json's own recursion guard: about 1000 levels
        raise SpecError(f"{source}: {too_deep(text_depth(text), settings)}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{source}: not UTF-8 text; a spec is a JSON text file") from None
    except ValueError as error:  # e.g. a number of more than 4300 digits
        raise SpecError(f"{source}: not a usable JSON document ({error})") from None
    check_spec_limits(spec, settings)
    return spec


@dataclass
class Document:
    """The checked top level of a spec."""

    name: str
    input_shape: tuple[int, ...] | None
    layers: list[Any]
    extra: dict[str, Any] = field(default_factory=dict)  # other top-level keys, kept as given


def read_document(spec: Any) -> Document:
    """Check the top level (name, input_shape, layers); raises SpecError without a layer."""
    if not isinstance(spec, dict):
        raise SpecError(f'a spec is a JSON object with "layers", not {type(spec).__name__}')
    for key in spec:
        if key in CONTRACT_KEYS:
            continue
        close = difflib.get_close_matches(key, CONTRACT_KEYS, n=1, cutoff=0.75)
        if close and close[0] not in spec:
            raise SpecError(f"unknown top-level key {key!r}; did you mean {close[0]!r}?")
    name = spec.get("name", "model")
    if not isinstance(name, str) or not name.strip():
        raise SpecError('"name" must be a non-empty text, e.g. "name": "my-cnn"')
    check_spec_limits(spec)
    layers = spec.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError(
            'the spec needs a non-empty "layers" list, e.g. "layers": [{"type": "Flatten"}, '
            '{"type": "Linear"}]'
        )
    shape = spec.get("input_shape")
    if shape is not None:
        shape = check_shape(shape, "the spec's input_shape")
    extra = {k: v for k, v in spec.items() if k not in CONTRACT_KEYS}
    return Document(name=name, input_shape=shape, layers=layers, extra=extra)


def check_shape(shape: Any, what: str) -> tuple[int, ...]:
    """A sample shape: a non-empty list of positive whole numbers (batch excluded) holding at
    most MAX_SAMPLE_ELEMENTS numbers."""
    ok = (
        isinstance(shape, list | tuple)
        and len(shape) > 0
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    )
    if not ok:
        shown = json.dumps(shape, default=str)
        raise SpecError(
            f"{what} must be a list of positive whole numbers without the batch, "
            f"e.g. [3, 32, 32]; got {shown[:200]}"
        )
    elements = 1
    for size in shape:
        elements *= size
        if elements > MAX_SAMPLE_ELEMENTS:
            break
    if elements > MAX_SAMPLE_ELEMENTS:
        shown = ", ".join(str(s) if s < 10**12 else f"{Decimal(s):.3g}" for s in shape[:8])
        raise SpecError(
            f"{what} [{shown}{', ...' if len(shape) > 8 else ''}] holds more than "
            f"{MAX_SAMPLE_ELEMENTS:,} numbers per sample; real samples hold at most millions"
        )
    return tuple(int(s) for s in shape)


def prefix(index: int | None, layer_type: str | None, layer_id: str | None) -> str:
    """'layer 4 Conv2d (id conv_b)': how every message names a layer."""
    text = f"layer {index}"
    if layer_type:
        text += f" {layer_type}"
    if layer_id:
        shown = visible(layer_id[:60]) + ("..." if len(layer_id) > 60 else "")
        text += f" (id {shown})"
    return text


def layer_error(index: int, layer_type: Any, layer_id: Any, message: str) -> SpecError:
    layer_type = layer_type if isinstance(layer_type, str) else None
    layer_id = layer_id if isinstance(layer_id, str) else None
    return SpecError(
        f"{prefix(index, layer_type, layer_id)}: {message}",
        index=index,
        layer_type=layer_type,
        layer_id=layer_id,
    )


@dataclass
class Graph:
    """Which value each layer reads and the order to run them in (until the first problem)."""

    sources: dict[int, list[int]]  # layer index -> indices it reads; -1 is the model input
    order: list[int]  # execution order of the layers that can run, stopping at `problem`
    problem: SpecError | None  # the first structural problem met in that order
    names: list[str]  # attribute name of each layer in built models and exported code
    ids: list[str | None]
    types: list[str | None]


def resolve_graph(layers: list[Any]) -> Graph:
    """Read each layer's type/id/inputs, resolve references, order the layers.

    Never raises: structural problems (bad ids, dangling or cyclic inputs) are recorded on the
    layer and become `problem` when the order reaches that layer.
    """
    count = len(layers)
    errors: dict[int, SpecError] = {}
    types: list[str | None] = []
    ids: list[str | None] = []
    raw_inputs: list[list[str] | None] = []
    for index, layer in enumerate(layers):
        layer_type, layer_id, inputs, error = read_header(index, layer)
        types.append(layer_type)
        ids.append(layer_id)
        raw_inputs.append(inputs)
        if error:
            errors[index] = error
    where: dict[str, int] = {}
    for index, layer_id in enumerate(ids):
        if layer_id is None:
            continue
        if layer_id in where:
            errors.setdefault(
                index,
                layer_error(
                    index,
                    types[index],
                    layer_id,
                    f"id {layer_id!r} is already used by layer {where[layer_id]}; ids must be unique",
                ),
            )
        else:
            where[layer_id] = index
    sources: dict[int, list[int]] = {}
    for index in range(count):
        refs = raw_inputs[index]
        if refs is None:
            sources[index] = [index - 1]  # -1 for the first layer: the model input
            continue
        sources[index] = []
        for ref in refs:
            if ref == INPUT:
                sources[index].append(-1)
            elif ref in where:
                sources[index].append(where[ref])
            else:
                known = ", ".join(repr(k) for k in where) or "none yet"
                close = difflib.get_close_matches(ref, list(where), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.setdefault(
                    index,
                    layer_error(
                        index,
                        types[index],
                        ids[index],
                        f"inputs refers to {ref!r}{hint}, which is not the id of any layer; known "
                        f'ids: {known} (and "input" for the model input)',
                    ),
                )
    order, problem = _order(count, sources, errors, types, ids)
    return Graph(sources, order, problem, attribute_names(types, ids), ids, types)


def read_header(
    index: int, layer: Any
) -> tuple[str | None, str | None, list[str] | None, SpecError | None]:
    """type, id and inputs of one layer entry, or the problem with them."""
    if not isinstance(layer, dict):
        return (
            None,
            None,
            None,
            layer_error(
                index,
                None,
                None,
                f'each layer is a JSON object such as {{"type": "ReLU"}}, not {json.dumps(layer, default=str)}',
            ),
        )
    layer_type = layer.get("type")
    layer_id = layer.get("id")
    id_ok = layer_id is None or (isinstance(layer_id, str) and layer_id.strip() != "")
    shown_id = layer_id if isinstance(layer_id, str) else None
    if "type" not in layer:
        return (
            None,
            shown_id,
            None,
            layer_error(index, None, shown_id, 'missing "type", e.g. "type": "Conv2d"'),
        )
    if not isinstance(layer_type, str) or layer_type not in LAYERS:
        return (
            None,
            shown_id,
            None,
            layer_error(index, layer_type, shown_id, unknown_type_message(layer_type)),
        )
    if not id_ok:
        return (
            layer_type,
            None,
            None,
            layer_error(
                index,
                layer_type,
                None,
                f'"id" must be a non-empty text, not {json.dumps(layer_id)}',
            ),
        )
    if layer_id == INPUT:
        return (
            layer_type,
            layer_id,
            None,
            layer_error(
                index,
                layer_type,
                layer_id,
                'the id "input" is reserved for the model input; choose another id',
            ),
        )
    frozen = layer.get("frozen", False)
    if not isinstance(frozen, bool):
        message = f'"frozen" must be true or false, not {json.dumps(frozen, default=str)}'
        return layer_type, layer_id, None, layer_error(index, layer_type, layer_id, message)
    inputs = layer.get("inputs")
    if inputs is None:
        return layer_type, layer_id, None, None
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        return (
            layer_type,
            layer_id,
            None,
            layer_error(
                index,
                layer_type,
                layer_id,
                f'"inputs" must be a list of layer ids such as ["block1", "conv3"], not {json.dumps(inputs, default=str)}',
            ),
        )
    return layer_type, layer_id, list(inputs), None


def _order(count, sources, errors, types, ids) -> tuple[list[int], SpecError | None]:
    """Topological order, lowest index first among ready layers; stops at the first problem."""
    pending = {i: {s for s in sources[i] if s >= 0} for i in range(count)}
    users: dict[int, list[int]] = {i: [] for i in range(count)}
    for index, needed in pending.items():
        for source in needed:
            users[source].append(index)
    ready = [i for i, needed in pending.items() if not needed]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        if index in errors:
            return order, errors[index]
        order.append(index)
        for user in users[index]:
            pending[user].discard(index)
            if not pending[user]:
                heapq.heappush(ready, user)
    left = sorted(i for i in range(count) if i not in order)
    if not left:
        return order, None
    # every layer left waits on another one left: follow the waits until one repeats
    path, current = [], left[0]
    while current not in path:
        path.append(current)
        current = min(s for s in sources[current] if s in left)
    cycle = path[path.index(current) :] + [current]
    start = min(cycle[:-1])
    shown = " -> ".join(_name_for(i, types, ids) for i in cycle)
    problem = errors.get(start) or layer_error(
        start,
        types[start],
        ids[start],
        f"its inputs form a cycle ({shown}); a layer can only read layers that do not depend on it",
    )
    return order, problem


def _name_for(index: int, types, ids) -> str:
    return ids[index] or f"layer {index}"


def attribute_names(types: list[str | None], ids: list[str | None]) -> list[str]:
    """Deterministic, readable module attribute names: the id (sanitized) or conv1, relu2, fc3."""
    names: list[str | None] = [None] * len(types)
    taken: set[str] = set()
    for index, layer_id in enumerate(ids):
        if layer_id:
            name = _unique(sanitize(layer_id), taken)
            names[index] = name
            taken.add(name)
    counters: dict[str, int] = {}
    for index, layer_type in enumerate(types):
        if names[index] is not None:
            continue
        stem = LAYERS[layer_type].short if layer_type in LAYERS else "layer"
        while True:
            counters[stem] = counters.get(stem, 0) + 1
            name = f"{stem}{counters[stem]}"
            if name not in taken and name not in RESERVED_NAMES:
                break
        names[index] = name
        taken.add(name)
    return [n for n in names if n is not None]


def sanitize(layer_id: str) -> str:
    """The attribute (and variable) name for an id: ASCII letters, digits and _ only (so `b²` or
    `x\\N` give plain identifiers), never a keyword, a reserved name or a private one."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", layer_id.strip()).strip("_") or "layer"
    if name[0].isdigit():
        name = f"layer_{name}"
    if keyword.iskeyword(name) or name in RESERVED_NAMES or name.startswith("_"):
        name = f"{name}_layer"
    return name


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    n = 2
    while f"{name}_{n}" in taken:
        n += 1
    return f"{name}_{n}"


def layer_arguments(layer: dict[str, Any]) -> dict[str, Any]:
    """A layer entry's keyword arguments: everything except type, id and inputs."""
    return {k: v for k, v in layer.items() if k not in LAYER_KEYS}


def validate_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A normalized copy of `spec` (name filled, arguments type-checked), or SpecError.

    Checks everything that needs no shape: the top level, types, ids, inputs, cycles, argument
    names, types and ranges. Shapes are checked by `core.builder.trace`.
    """
    document = read_document(spec)
    graph = resolve_graph(document.layers)
    if graph.problem:
        raise graph.problem
    normalized_layers = []
    for index, layer in enumerate(document.layers):
        layer_type = LAYERS[layer["type"]]
        try:
            args = layer_type.normalize(layer_arguments(layer))
        except LayerProblem as problem:
            raise layer_error(index, layer["type"], layer.get("id"), str(problem)) from None
        entry = {"type": layer["type"]}
        if "id" in layer:
            entry["id"] = layer["id"]
        if "inputs" in layer:
            entry["inputs"] = (
                [layer["inputs"]] if isinstance(layer["inputs"], str) else list(layer["inputs"])
            )
        entry.update({k: list(v) if isinstance(v, tuple) else v for k, v in args.items()})
        if layer.get("frozen"):
            entry["frozen"] = True
        normalized_layers.append(entry)
    result = copy.deepcopy(document.extra)
    result["name"] = document.name
    if document.input_shape is not None:
        result["input_shape"] = list(document.input_shape)
    result["layers"] = normalized_layers
    return result
