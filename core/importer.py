"""PyTorch source -> model spec, through `torch.fx` symbolic tracing.

The class is instantiated without arguments and its `forward` traced into a graph. Every node
must map onto a registry layer: a torch.nn module (Conv2d, LSTM, ...), a studio layer copied by
`studio code` (Permute, Add, ...), or a function whose layer is obvious (`x + y` -> Add,
`torch.cat` -> Concat, `F.relu` -> ReLU, `x.flatten(1)` -> Flatten ...). The first node that
does not is reported with its line in the source. With an input shape the spec is traced and
checked layer by layer against the modules it came from (same arguments, same parameters).

Importing runs the code it is given (Python cannot run code in a sandbox), so it happens only
when a person asks for it (`studio import`, the Build page's "Import code" button).
"""

from __future__ import annotations

import copy
import inspect
import linecache
import operator
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import fx, nn

from core.errors import SpecError, StudioError
from core.facts import ModelFacts
from core.import_layers import (
    ImportProblem,
    is_studio_copy,
    layer_of_call,
    layer_of_module,
    tensor_args,
)
from core.layers import LAYERS
from core.spec import INPUT


@dataclass
class ImportedModel:
    spec: dict[str, Any]
    class_name: str
    params: int  # parameters of the instantiated module
    checked: bool = False  # the spec was traced against an input shape and matched the module
    notes: list[str] = field(default_factory=list)
    modules: list[nn.Module | None] = field(default_factory=list, repr=False)  # per layer


SHAPE_COMMENT = re.compile(r"#\s*x:\s*\(batch,\s*([\d,\s]+)\)")


# ---- loading the class -------------------------------------------------------------------------


def import_source(
    source: str,
    *,
    class_name: str | None = None,
    filename: str = "model.py",
    input_shape: tuple[int, ...] | None = None,
    assumed_shape: tuple[int, ...] | None = None,
) -> ImportedModel:
    """The spec of the nn.Module class `class_name` (default: the last one the source defines)
    in `source`. Runs the source. ImportProblem / SpecError with a message a person can act on.

    The spec is checked against `input_shape` (else the `# x: (batch, ...)` comment of code
    from `studio code`); a mismatch is an error. Without either, `assumed_shape` (the Build
    page's current input) is tried, and a model that does not fit it is imported unchecked."""
    module_name = f"studio_import_{uuid.uuid4().hex[:8]}"
    where = filename if filename.startswith("<") else f"<{filename}>"
    linecache.cache[where] = (len(source), None, source.splitlines(True), where)
    namespace: dict[str, Any] = {"__name__": module_name, "__file__": where}
    try:
        code = compile(source, where, "exec")
    except SyntaxError as error:
        raise ImportProblem(
            f"{filename} is not valid Python: {error.msg} at line {error.lineno}"
        ) from None
    try:
        exec(code, namespace)  # noqa: S102 (the person asked to import this code)
    except Exception as error:
        raise ImportProblem(f"running {filename} failed: {type(error).__name__}: {error}") from None
    cls = choose_class(namespace, module_name, class_name, filename)
    try:
        model = cls()
    except TypeError as error:
        raise ImportProblem(
            f"{cls.__name__}() cannot be created without arguments ({error}); give its "
            "__init__ arguments default values"
        ) from None
    except Exception as error:
        raise ImportProblem(f"{cls.__name__}() failed: {type(error).__name__}: {error}") from None
    spec, modules = spec_of_module(model, name=spec_name(cls.__name__), source=source, where=where)
    own = cls.__dict__.get("__doc__")  # not nn.Module's, which getdoc would inherit
    doc = inspect.cleandoc(own) if isinstance(own, str) else None
    if doc and not doc.startswith("Built from the spec"):
        spec = {"name": spec["name"], "description": " ".join(doc.split()), **spec}
        spec["layers"] = spec.pop("layers")
    params = sum(p.numel() for p in model.parameters())
    imported = ImportedModel(spec, cls.__name__, params, modules=modules)
    shape = input_shape or shape_hint(source)
    strict = shape is not None
    shape = shape or assumed_shape
    if shape:
        layers = copy.deepcopy(spec["layers"])
        spec["input_shape"] = list(shape)
        spec["layers"] = spec.pop("layers")
        try:
            check_against(imported, model, ModelFacts.from_input_shape(shape))
        except StudioError as error:
            if strict:
                raise
            spec.pop("input_shape")
            spec["layers"] = layers
            shown = "×".join(str(d) for d in shape)
            imported.notes.append(
                f"shapes not checked: it does not fit the input {shown} ({error})"
            )
    else:
        imported.notes.append(
            "shapes not checked: no input shape was given (studio import --input-shape 3,32,32)"
        )
    return imported


def choose_class(
    namespace: dict[str, Any], module_name: str, class_name: str | None, filename: str
) -> type[nn.Module]:
    defined = [
        value
        for value in namespace.values()
        if isinstance(value, type)
        and issubclass(value, nn.Module)
        and value.__module__ == module_name
    ]
    if class_name:
        for cls in defined:
            if cls.__name__ == class_name:
                return cls
        names = ", ".join(c.__name__ for c in defined) or "none"
        raise ImportProblem(
            f"{filename} defines no nn.Module class {class_name!r} (it defines: {names})"
        )
    models = [c for c in defined if not is_studio_copy(c)]
    if not models:
        raise ImportProblem(f"{filename} defines no nn.Module class to import")
    return models[-1]  # parts come first, the model that uses them last


def spec_name(class_name: str) -> str:
    """ResidualCnn -> residual-cnn (the inverse of codegen's class names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", class_name).lower()


def shape_hint(source: str) -> tuple[int, ...] | None:
    """The input shape from a `# x: (batch, 1, 8, 8)` comment (code from `studio code`)."""
    match = SHAPE_COMMENT.search(source)
    if not match:
        return None
    return tuple(int(d) for d in match.group(1).replace(" ", "").strip(",").split(","))


# ---- tracing -----------------------------------------------------------------------------------


class StudioTracer(fx.Tracer):
    """torch.nn modules and studio layers are leaves (one node each); other modules are traced
    through, so a user's blocks become the layers they are made of."""

    def __init__(self) -> None:
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return is_studio_copy(type(m)) or super().is_leaf_module(m, qualname)


@dataclass
class Mapped:
    node: fx.Node
    layer: dict[str, Any]
    sources: list[fx.Node]
    name: str  # the module's attribute path, or the node's name: the layer's id when needed
    module: nn.Module | None = None


def spec_of_module(
    model: nn.Module, *, name: str, source: str, where: str
) -> tuple[dict[str, Any], list[nn.Module | None]]:
    """The spec of a model instance, and the module each layer came from (None: a function)."""
    tracer = StudioTracer()
    try:
        graph = tracer.trace(model)
    except Exception as error:  # fx cannot follow data-dependent Python control flow
        raise ImportProblem(
            f"torch.fx cannot trace {type(model).__name__}.forward: {one_line(error)} (the "
            "studio imports models whose forward is a fixed graph of layers)"
        ) from None
    modules = dict(model.named_modules())
    lines = source.splitlines()
    placeholders = [n for n in graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ImportProblem(
            f"forward takes {len(placeholders)} inputs; the studio imports models with one input"
        )
    alias: dict[fx.Node, fx.Node] = {placeholders[0]: placeholders[0]}  # node -> value it is
    batch_helpers: set[fx.Node] = set()
    mapped: list[Mapped] = []
    output: fx.Node | None = None
    for node in graph.nodes:
        if node.op == "placeholder":
            continue
        if node.op == "output":
            output = node.args[0] if isinstance(node.args[0], fx.Node) else None
            if output is None:
                raise unsupported(node, "returning several values", lines, where)
            break
        if is_batch_helper(node, placeholders[0], alias):
            batch_helpers.add(node)
            continue
        if node.op == "call_function" and node.target is operator.getitem and not node.users:
            continue  # `out, _ = self.lstm(x)`: the unused part of a tuple
        if is_output_pick(node, mapped):
            alias[node] = alias[node.args[0]]
            continue
        layer = map_node(node, modules, batch_helpers, lines, where)
        sources = [alias[a] for a in tensor_args(node, batch_helpers) if a in alias]
        missing = [a for a in tensor_args(node, batch_helpers) if a not in alias]
        if missing:
            raise unsupported(missing[0], "an operation the studio has no layer for", lines, where)
        label = node.target if node.op == "call_module" else node.name
        mapped.append(
            Mapped(
                node,
                layer,
                sources,
                str(label).replace(".", "_"),
                modules.get(node.target) if node.op == "call_module" else None,
            )
        )
        alias[node] = node
    if not mapped:
        raise ImportProblem(f"{type(model).__name__}.forward uses no layer")
    if output is None or alias.get(output) is not mapped[-1].node:
        raise ImportProblem(
            "the model must return the output of its last layer (the studio's output is its "
            "last block)"
        )
    spec = {"name": name, "layers": connect(mapped, placeholders[0])}
    return spec, [item.module for item in mapped]


def connect(mapped: list[Mapped], model_input: fx.Node) -> list[dict[str, Any]]:
    """Layers in execution order; `inputs` where a layer does not read the one before it."""
    previous: dict[fx.Node, fx.Node | None] = {}
    for position, item in enumerate(mapped):
        previous[item.node] = mapped[position - 1].node if position else model_input
    needs_id: set[fx.Node] = set()
    for item in mapped:
        if item.sources != [previous[item.node]] or LAYERS[item.layer["type"]].merge:
            needs_id.update(item.sources)
    names = {item.node: item.name for item in mapped}
    taken: set[str] = set()
    ids: dict[fx.Node, str] = {model_input: INPUT}
    for item in mapped:
        if item.node in needs_id:
            ident = re.sub(r"[^A-Za-z0-9_]", "_", names[item.node]) or "block"
            if ident[0].isdigit() or ident in taken or ident == INPUT:
                ident = f"{ident}_{len(taken) + 1}"
            taken.add(ident)
            ids[item.node] = ident
    layers = []
    for item in mapped:
        layer = dict(item.layer)
        if item.node in ids and item.node is not model_input:
            layer["id"] = ids[item.node]
        if item.sources != [previous[item.node]] or LAYERS[layer["type"]].merge:
            layer["inputs"] = [ids[s] for s in item.sources]
        layers.append(layer)
    return layers


def is_batch_helper(node: fx.Node, model_input: fx.Node, alias: dict) -> bool:
    """x.size(0), x.shape[0], x.shape: only used to keep the batch in view/reshape."""
    if node.op == "call_method" and node.target == "size":
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1] == "shape":
        return True
    return (
        node.op == "call_function"
        and node.target is operator.getitem
        and isinstance(node.args[0], fx.Node)
        and node.args[0].op in ("call_method", "call_function")
        and (node.args[0].target == "size" or node.args[0].target is getattr)
    )


def is_output_pick(node: fx.Node, mapped: list[Mapped]) -> bool:
    """`out, state = self.lstm(x)` / `out = self.attn(x, x, x)[0]`: item 0 of a module that
    returns (output, extra) is the layer's output."""
    if node.op != "call_function" or node.target is not operator.getitem or node.args[1] != 0:
        return False
    source = node.args[0]
    return bool(
        mapped
        and isinstance(source, fx.Node)
        and source.op == "call_module"
        and any(m.node is source for m in mapped)
        and isinstance(
            next(m.module for m in mapped if m.node is source),
            nn.RNNBase | nn.MultiheadAttention,
        )
    )


# ---- one node -> one layer ---------------------------------------------------------------------


def map_node(
    node: fx.Node, modules: dict[str, nn.Module], helpers: set, lines: list[str], where: str
) -> dict[str, Any]:
    if node.op == "call_module":
        module = modules[node.target]
        layer = layer_of_module(module)
        if isinstance(layer, str):
            raise unsupported(node, layer, lines, where)
        if isinstance(module, nn.MultiheadAttention):
            query, key, value = (list(node.args) + [None, None, None])[:3]
            if not (query is key is value):
                raise unsupported(node, "attention between different inputs", lines, where)
        return layer
    if node.op == "get_attr":
        raise unsupported(node, f"reading the tensor self.{node.target}", lines, where)
    layer = layer_of_call(node, helpers)
    if isinstance(layer, str):
        raise unsupported(node, layer, lines, where)
    return layer


# ---- checking the spec against the module ------------------------------------------------------


def check_against(imported: ImportedModel, model: nn.Module, facts: ModelFacts) -> None:
    """Trace the spec and compare each layer with the module it came from: the same class,
    the same repr (every hyperparameter) and the same parameter count; drop arguments that the
    input decides anyway (max_len of a positional encoding, ...)."""
    from core.builder import check_model

    spec = imported.spec
    traced = check_model(spec, facts)
    drop_inferable(spec, facts, traced)
    traced = check_model(spec, facts)
    for step, module in zip(traced.steps, imported.modules, strict=True):
        if module is None or step.construct.cls.__name__ != type(module).__name__:
            continue
        with torch.device("meta"):
            built = step.construct.cls(**step.construct.kwargs)
        if repr(built) != repr(module):
            raise ImportProblem(
                f"layer {step.index} ({step.type}) would be {built!r} but the code has "
                f"{module!r}; the spec cannot say what makes them differ"
            )
    if traced.params != imported.params:
        raise ImportProblem(
            f"the spec has {traced.params:,} parameters but {imported.class_name} has "
            f"{imported.params:,}: some of its parameters are not used by forward"
        )
    imported.checked = True


def drop_inferable(spec: dict[str, Any], facts: ModelFacts, traced: Any) -> None:
    from core.builder import trace

    for index, layer in enumerate(spec["layers"]):
        known = LAYERS[layer["type"]]
        for param in known.params:
            if param.default is not None or param.required or param.name not in layer:
                continue
            trial = {**spec, "layers": [dict(item) for item in spec["layers"]]}
            trial["layers"][index].pop(param.name)
            again = trace(trial, facts)
            if (
                again.ok
                and again.steps[index].construct.kwargs == traced.steps[index].construct.kwargs
            ):
                layer.pop(param.name)


def unsupported(node: fx.Node, what: str, lines: list[str], where: str) -> ImportProblem:
    line = source_line(node, where)
    text = f" (line {line}: {lines[line - 1].strip()})" if line and line <= len(lines) else ""
    return ImportProblem(
        f"{what} has no studio layer{text}; the studio imports torch.nn layers and its own "
        "(see the layer palette), residual additions (x + y) and torch.cat"
    )


def source_line(node: fx.Node, where: str) -> int | None:
    trace_text = node.stack_trace or ""
    found = [int(n) for f, n in re.findall(r'File "([^"]*)", line (\d+)', trace_text) if f == where]
    return found[-1] if found else None


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text[:300]


__all__ = ["ImportProblem", "ImportedModel", "import_source", "SpecError"]
