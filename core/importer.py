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

import inspect
import linecache
import math
import operator
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from core import studio_layers
from core.errors import SpecError, StudioError
from core.facts import ModelFacts
from core.layers import LAYERS
from core.spec import INPUT


class ImportProblem(StudioError):
    """PyTorch code that cannot become a spec: names the operation and its line."""


@dataclass
class ImportedModel:
    spec: dict[str, Any]
    class_name: str
    params: int  # parameters of the instantiated module
    checked: bool = False  # the spec was traced against an input shape and matched the module
    notes: list[str] = field(default_factory=list)
    modules: list[nn.Module | None] = field(default_factory=list, repr=False)  # per layer


INFERRED = {"in_channels", "in_features", "num_features", "normalized_shape", "d_model",
            "embed_dim", "input_size"}  # fmt: skip
STUDIO_NAMES = {cls.__name__: cls for cls in studio_layers.STUDIO_CLASSES}
SHAPE_COMMENT = re.compile(r"#\s*x:\s*\(batch,\s*([\d,\s]+)\)")


# ---- loading the class -------------------------------------------------------------------------


def import_source(
    source: str,
    *,
    class_name: str | None = None,
    filename: str = "model.py",
    input_shape: tuple[int, ...] | None = None,
) -> ImportedModel:
    """The spec of the nn.Module class `class_name` (default: the last one the source defines)
    in `source`. Runs the source. ImportProblem / SpecError with a message a person can act on."""
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
    if input_shape is None:
        input_shape = shape_hint(source)
    spec, modules = spec_of_module(model, name=spec_name(cls.__name__), source=source, where=where)
    own = cls.__dict__.get("__doc__")  # not nn.Module's, which getdoc would inherit
    doc = inspect.cleandoc(own) if isinstance(own, str) else None
    if doc and not doc.startswith("Built from the spec"):
        spec = {"name": spec["name"], "description": " ".join(doc.split()), **spec}
        spec["layers"] = spec.pop("layers")
    params = sum(p.numel() for p in model.parameters())
    imported = ImportedModel(spec, cls.__name__, params, modules=modules)
    if input_shape:
        spec["input_shape"] = list(input_shape)
        spec["layers"] = spec.pop("layers")
        check_against(imported, model, ModelFacts.from_input_shape(input_shape))
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


def is_studio_copy(cls: type) -> bool:
    """A class named like a studio layer whose forward is the studio's (as `studio code` writes
    it): it is that layer."""
    studio = STUDIO_NAMES.get(cls.__name__)
    forward = getattr(cls, "forward", None)
    return (
        studio is not None
        and forward is not None
        and getattr(forward, "__code__", None) is not None
        and forward.__code__.co_code == studio.forward.__code__.co_code
    )


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


def tensor_args(node: fx.Node, helpers: set[fx.Node]) -> list[fx.Node]:
    found: list[fx.Node] = []

    def visit(value: Any) -> None:
        if isinstance(value, fx.Node) and value not in helpers and value not in found:
            found.append(value)
        elif isinstance(value, list | tuple):
            for item in value:
                visit(item)

    visit(node.args)
    for value in node.kwargs.values():
        visit(value)
    return found


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


def layer_of_module(module: nn.Module) -> dict[str, Any] | str:
    """The spec layer of a leaf module, or why there is none."""
    cls = type(module)
    if is_studio_copy(cls) or cls in studio_layers.STUDIO_CLASSES:
        type_name = "MultiheadAttention" if cls.__name__ == "SelfAttention" else cls.__name__
    elif isinstance(module, nn.MultiheadAttention):
        if not module.batch_first:
            return "nn.MultiheadAttention without batch_first=True"
        return compact("MultiheadAttention", {
            "num_heads": module.num_heads, "dropout": module.dropout,
            "bias": module.in_proj_bias is not None,
        })  # fmt: skip
    else:
        type_name = cls.__name__
        if type_name not in LAYERS or not cls.__module__.startswith("torch.nn"):
            return f"the module {cls.__module__}.{cls.__name__}"
    return compact(type_name, read_args(type_name, module))


def read_args(type_name: str, module: Any) -> dict[str, Any]:
    special = SPECIAL_READERS.get(type_name)
    if special is not None:
        return special(module)
    args = {}
    for param in LAYERS[type_name].params:
        if (
            param.name == "bias"
            and isinstance(module, nn.Module)
            and not isinstance(getattr(module, "bias", None), bool)
        ):
            args["bias"] = getattr(module, "bias", None) is not None
        elif hasattr(module, param.name):
            args[param.name] = getattr(module, param.name)
    if isinstance(module, nn.RNNBase) and not module.batch_first:
        raise ImportProblem(
            f"{type_name} reads (time, batch, features) here; the studio's recurrent layers are "
            "batch first: create it with batch_first=True"
        )
    return args


def _transformer(module: nn.TransformerEncoderLayer) -> dict[str, Any]:
    if not module.self_attn.batch_first:
        raise ImportProblem(
            "TransformerEncoderLayer reads (time, batch, features) here; create it with "
            "batch_first=True"
        )
    activation = getattr(module, "activation_relu_or_gelu", 1)
    return {
        "nhead": module.self_attn.num_heads,
        "dim_feedforward": module.linear1.out_features,
        "dropout": module.dropout.p,
        "activation": "gelu" if activation == 2 else "relu",
        "layer_norm_eps": module.norm1.eps,
        "norm_first": module.norm_first,
        "bias": module.linear1.bias is not None,
    }


def _self_attention(module: Any) -> dict[str, Any]:
    inner = module.attention
    return {"num_heads": inner.num_heads, "dropout": inner.dropout,
            "bias": inner.in_proj_bias is not None}  # fmt: skip


def _positional(module: Any) -> dict[str, Any]:
    return {"kind": module.kind, "max_len": int(module.position.shape[0]),
            "dropout": module.dropout.p}  # fmt: skip


def _layer_norm(module: nn.LayerNorm) -> dict[str, Any]:
    return {"eps": module.eps, "elementwise_affine": module.elementwise_affine,
            "bias": module.bias is not None or not module.elementwise_affine}  # fmt: skip


SPECIAL_READERS = {
    "TransformerEncoderLayer": _transformer,
    "MultiheadAttention": _self_attention,
    "PositionalEncoding": _positional,
    "LayerNorm": _layer_norm,
}

ACTIVATIONS = {
    torch.relu: "ReLU", F.relu: "ReLU", "relu": "ReLU",
    torch.sigmoid: "Sigmoid", F.sigmoid: "Sigmoid", "sigmoid": "Sigmoid",
    torch.tanh: "Tanh", F.tanh: "Tanh", "tanh": "Tanh",
    F.silu: "SiLU", F.gelu: "GELU", F.leaky_relu: "LeakyReLU",
}  # fmt: skip
POOLS = {
    F.max_pool1d: "MaxPool1d", F.max_pool2d: "MaxPool2d",
    F.avg_pool1d: "AvgPool1d", F.avg_pool2d: "AvgPool2d",
    F.adaptive_avg_pool1d: "AdaptiveAvgPool1d", F.adaptive_avg_pool2d: "AdaptiveAvgPool2d",
}  # fmt: skip


def layer_of_call(node: fx.Node, helpers: set) -> dict[str, Any] | str:
    """The spec layer of a function or method call, or why there is none."""
    target = node.target
    args, kwargs = list(node.args), dict(node.kwargs)
    key = target
    if key in (operator.add, operator.iadd, torch.add, "add"):
        if len(tensor_args(node, helpers)) < 2 or kwargs.get("alpha", 1) != 1:
            return "adding a constant (the studio's Add adds layer outputs)"
        return {"type": "Add"}
    if key in (torch.cat, torch.concat, torch.concatenate):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else 0)
        if not isinstance(dim, int) or dim < 1:
            return f"torch.cat along dim={dim} (use a positive dimension after the batch)"
        return compact("Concat", {"dim": dim - 1})
    if key in ACTIVATIONS:
        type_name = ACTIVATIONS[key]
        if type_name == "GELU":
            return compact("GELU", {"approximate": kwargs.get("approximate", "none")})
        if type_name == "LeakyReLU":
            slope = kwargs.get("negative_slope", args[1] if len(args) > 1 else 0.01)
            return compact("LeakyReLU", {"negative_slope": slope})
        return {"type": type_name}
    if key in (torch.flatten, "flatten"):
        start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
        end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
        if start < 1:
            return "flattening the batch dimension too (use flatten(1) / nn.Flatten())"
        return compact("Flatten", {"start_dim": start, "end_dim": end})
    if key in ("view", "reshape"):
        sizes = args[1:]
        if len(sizes) == 1 and isinstance(sizes[0], list | tuple):
            sizes = list(sizes[0])
        if not sizes or sizes[0] not in helpers or not all(isinstance(s, int) for s in sizes[1:]):
            return f"{key} without keeping the batch first (write x.{key}(x.size(0), ...))"
        rest = list(sizes[1:])
        return {"type": "Flatten"} if rest == [-1] else {"type": "Reshape", "shape": rest}
    if key == "permute":
        dims = args[1:] if not (len(args) == 2 and isinstance(args[1], list | tuple)) else args[1]
        if not dims or dims[0] != 0 or not all(isinstance(d, int) for d in dims):
            return "permute that moves the batch dimension"
        return {"type": "Permute", "dims": [d - 1 for d in dims[1:]]}
    if key in POOLS:
        return pool_call(POOLS[key], args, kwargs)
    if key in (F.dropout, F.dropout1d, F.dropout2d):
        p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
        return compact("Dropout2d" if key is F.dropout2d else "Dropout", {"p": p})
    if key is operator.getitem and sequence_last(args[1]):
        return {"type": "SequencePool", "mode": "last"}
    if key in ("mean", "amax", torch.mean, torch.amax):
        dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
        if dim == 1 and not kwargs.get("keepdim"):
            return {"type": "SequencePool", "mode": "mean" if "mean" in str(key) else "max"}
    return describe_call(node)


def pool_call(type_name: str, args: list, kwargs: dict) -> dict[str, Any]:
    names = [p.name for p in LAYERS[type_name].params]
    values = dict(zip(names, args[1:], strict=False))
    values.update({k: v for k, v in kwargs.items() if k in names})
    return compact(type_name, values)


def sequence_last(index: Any) -> bool:
    """x[:, -1]: the last step of a (batch, time, features) sequence."""
    return (
        isinstance(index, tuple) and len(index) == 2 and index[0] == slice(None) and index[1] == -1
    )


def describe_call(node: fx.Node) -> str:
    target = node.target
    if node.op == "call_method":
        return f"the tensor method .{target}()"
    module = getattr(target, "__module__", "") or ""
    name = getattr(target, "__name__", str(target))
    if module.startswith("_operator"):
        return f"the operator {name}"
    prefix = {"torch.nn.functional": "F.", "torch": "torch."}.get(module, f"{module}.")
    return f"the function {prefix}{name}"


def compact(type_name: str, args: dict[str, Any]) -> dict[str, Any]:
    """A spec layer: arguments as the spec writes them (tuples of one repeated value as one
    number), without the inferred ones and without those equal to the default."""
    layer: dict[str, Any] = {"type": type_name}
    params = {p.name: p for p in LAYERS[type_name].params}
    for name, value in args.items():
        if name in INFERRED or name not in params:
            continue
        if isinstance(value, torch.Tensor):
            value = value.tolist()
        if isinstance(value, tuple | list):
            value = list(value)
            if params[name].kind == "int" and value and all(v == value[0] for v in value):
                value = value[0]
        if isinstance(value, float) and params[name].kind == "float":
            value = float(f"{value:.12g}")
        default = params[name].default
        if (
            not params[name].required
            and value == default
            and isinstance(value, bool) == isinstance(default, bool)
        ):
            continue
        if (
            name == "stride"
            and type_name.startswith(("MaxPool", "AvgPool"))
            and value == args.get("kernel_size")
        ):
            continue  # PyTorch stores the default stride as the kernel size
        if isinstance(value, float) and math.isnan(value):
            continue
        layer[name] = value
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
