"""torch modules and function calls -> spec layers: the mapping `core.importer` traces with.

A leaf module maps by its class (torch.nn classes share their names with the registry; the
studio's own layers as `studio code` copies them are recognized by their forward), its arguments
read back from its attributes. A call maps by its function or method (`x + y` -> Add, ...).
Each returns the layer, or a phrase saying what has no layer, for the importer's message.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn

from core import studio_layers
from core.errors import StudioError
from core.layers import LAYERS


class ImportProblem(StudioError):
    """PyTorch code that cannot become a spec: names the operation and its line."""


INFERRED = {"in_channels", "in_features", "num_features", "normalized_shape", "d_model",
            "embed_dim", "input_size"}  # fmt: skip
STUDIO_NAMES = {cls.__name__: cls for cls in studio_layers.STUDIO_CLASSES}


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
