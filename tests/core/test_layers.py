"""The layer registry: complete schemas, and every type builds, runs and traces truthfully."""

from __future__ import annotations

import inspect

import pytest
import torch

from core.builder import build_model, trace
from core.errors import SpecError
from core.layers import FAMILIES, KINDS, LAYERS, LayerProblem, get_layer

ISSUE_LAYERS = {
    "CNN": [
        "Conv1d",
        "Conv2d",
        "MaxPool1d",
        "MaxPool2d",
        "AvgPool1d",
        "AvgPool2d",
        "AdaptiveAvgPool1d",
        "AdaptiveAvgPool2d",
        "BatchNorm1d",
        "BatchNorm2d",
        "Dropout",
        "Dropout2d",
    ],
    "RNN": ["Embedding", "RNN", "LSTM", "GRU", "SequencePool"],
    "Attention": [
        "MultiheadAttention",
        "TransformerEncoderLayer",
        "PositionalEncoding",
        "LayerNorm",
    ],
    "Common": [
        "Linear",
        "Flatten",
        "Permute",
        "Reshape",
        "ReLU",
        "LeakyReLU",
        "GELU",
        "SiLU",
        "Tanh",
        "Sigmoid",
        "Identity",
        "Add",
        "Concat",
    ],
}

# one small model per layer type: (input shape, the layer's arguments, layers before it).
# A new registry entry fails test_every_layer_has_a_sample until it gets one here.
IMAGE, SIGNAL, SEQUENCE = (3, 9, 9), (2, 12), (6, 8)
SAMPLES: dict[str, tuple[tuple[int, ...], dict, list[dict]]] = {
    "Conv1d": (SIGNAL, {"out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1}, []),
    "Conv2d": (IMAGE, {"out_channels": 4, "kernel_size": [3, 2], "padding": "same"}, []),
    "MaxPool1d": (SIGNAL, {"kernel_size": 3, "stride": 2}, []),
    "MaxPool2d": (IMAGE, {"kernel_size": 2, "ceil_mode": True}, []),
    "AvgPool1d": (SIGNAL, {"kernel_size": 4}, []),
    "AvgPool2d": (IMAGE, {"kernel_size": 3, "padding": 1}, []),
    "AdaptiveAvgPool1d": (SIGNAL, {"output_size": 5}, []),
    "AdaptiveAvgPool2d": (IMAGE, {"output_size": [2, 3]}, []),
    "BatchNorm1d": (SIGNAL, {}, []),
    "BatchNorm2d": (IMAGE, {"momentum": 0.2}, []),
    "Dropout": (IMAGE, {"p": 0.3}, []),
    "Dropout2d": (IMAGE, {}, []),
    "RNN": (SEQUENCE, {"hidden_size": 5, "nonlinearity": "relu"}, []),
    "LSTM": (SEQUENCE, {"hidden_size": 5, "num_layers": 2, "bidirectional": True}, []),
    "GRU": (SEQUENCE, {"hidden_size": 5, "dropout": 0.1, "num_layers": 2}, []),
    "SequencePool": (SEQUENCE, {"mode": "max"}, []),
    "MultiheadAttention": (SEQUENCE, {"num_heads": 2}, []),
    "TransformerEncoderLayer": (SEQUENCE, {"nhead": 2, "dim_feedforward": 16}, []),
    "PositionalEncoding": ((6, 7), {"kind": "sinusoidal", "max_len": 10}, []),
    "Embedding": ((5,), {"num_embeddings": 20, "embedding_dim": 4, "padding_idx": 0}, []),
    "LayerNorm": (SEQUENCE, {}, []),
    "Linear": (SEQUENCE, {"out_features": 3}, []),
    "Flatten": (IMAGE, {}, []),
    "Permute": (IMAGE, {"dims": [2, 0, 1]}, []),
    "Reshape": (IMAGE, {"shape": [9, -1]}, []),
    "ReLU": (SIGNAL, {}, []),
    "LeakyReLU": (SIGNAL, {"negative_slope": 0.2}, []),
    "GELU": (SIGNAL, {"approximate": "tanh"}, []),
    "SiLU": (SIGNAL, {}, []),
    "Tanh": (SIGNAL, {}, []),
    "Sigmoid": (SIGNAL, {}, []),
    "Identity": (SIGNAL, {}, []),
    "Backbone": (IMAGE, {"arch": "mobilenet_v3_small", "weights": "none", "image_size": 32}, []),
    "Add": (
        IMAGE,
        {"inputs": ["a", "b"]},
        [{"type": "Tanh", "id": "a"}, {"type": "Sigmoid", "id": "b", "inputs": ["input"]}],
    ),
    "Concat": (
        IMAGE,
        {"dim": -1, "inputs": ["a", "b"]},
        [
            {"type": "Tanh", "id": "a"},
            {"type": "AvgPool2d", "kernel_size": [1, 3], "id": "b", "inputs": ["input"]},
        ],
    ),
}


def sample_spec(layer_type: str) -> dict:
    shape, args, before = SAMPLES[layer_type]
    return {
        "name": f"sample-{layer_type}",
        "input_shape": list(shape),
        "layers": [*before, {"type": layer_type, **args}],
    }


def test_registry_holds_every_layer_the_issue_lists_in_its_family():
    for family, names in ISSUE_LAYERS.items():
        for name in names:
            assert name in LAYERS, name
            assert LAYERS[name].family == family, name
    assert set(FAMILIES) == set(ISSUE_LAYERS)


def test_every_layer_has_a_sample():
    missing = sorted(set(LAYERS) - set(SAMPLES))
    assert missing == [], f"add a sample model for {missing} to SAMPLES"


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_schema_is_complete_enough_for_forms(name):
    layer = LAYERS[name]
    assert layer.family in FAMILIES
    assert layer.description.endswith(".") and 20 < len(layer.description) < 110
    assert layer.short.isidentifier()
    for param in layer.params:
        assert param.kind in KINDS, (name, param.name)
        assert param.help, (name, param.name)
        assert param.name not in layer.inferred
        if param.kind == "choice":
            assert param.default in param.choices
        if param.required:
            # forms pre-fill required fields with the default, which must itself be valid
            assert param.default is not None and param.check(param.default) is not None
        elif param.default is not None:
            # an optional default passes its own check unchanged (lists come back as tuples)
            default = param.default
            assert param.check(default) == (
                tuple(default) if isinstance(default, list) else default
            )
        if param.minimum is not None and param.maximum is not None:
            assert param.minimum <= param.maximum


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_optional_defaults_are_the_module_defaults(name):
    """A left-out argument is not passed to the module, so the schema must state its default."""
    traced = trace(sample_spec(name))
    assert traced.ok, traced.error
    module_cls = traced.steps[-1].construct.cls
    signature = inspect.signature(module_cls.__init__)
    for param in LAYERS[name].params:
        if param.required or param.name not in signature.parameters:
            continue
        default = signature.parameters[param.name].default
        if default is inspect.Parameter.empty:
            continue  # the maker always passes it (e.g. output_size)
        if callable(default):
            default = default.__name__  # activation="relu" means F.relu
        assert param.default == default, (name, param.name, param.default, default)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_each_layer_builds_runs_backward_and_traces_its_real_shape(name):
    spec = sample_spec(name)
    traced = trace(spec)
    assert traced.ok, traced.error
    torch.manual_seed(0)
    model = build_model(spec).train()
    shape = traced.input_shape
    if model.input_dtype == torch.int64:
        x = torch.randint(0, 20, (4, *shape))
    else:
        x = torch.randn(4, *shape, requires_grad=True)
    real_shapes = {}
    hooks = [
        module.register_forward_hook(
            lambda _m, _i, out, key=key: real_shapes.__setitem__(
                key, tuple((out[0] if isinstance(out, tuple) else out).shape[1:])
            )
        )
        for key, module in model.named_children()
    ]
    output = model(x)
    for hook in hooks:
        hook.remove()
    for layer in traced.layers:
        assert real_shapes[layer.name] == layer.output_shape, layer
    assert output.shape[1:] == traced.output_shape
    assert torch.isfinite(output).all()
    output.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    if x.is_floating_point():
        grads.append(x.grad)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    real_params = sum(p.numel() for p in model.parameters())
    assert traced.params == real_params


def test_inferred_arguments_are_never_required_but_may_be_given_when_right():
    spec = {
        "input_shape": [3, 8, 8],
        "layers": [
            {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
            {"type": "BatchNorm2d", "num_features": 4},
            {"type": "Flatten"},
            {"type": "Linear", "in_features": 144, "out_features": 2},
        ],
    }
    assert trace(spec).ok
    spec["layers"][0]["in_channels"] = 1
    error = trace(spec).error
    assert error.index == 0
    assert (
        "in_channels=1" in str(error) and "3" in str(error) and "remove in_channels" in str(error)
    )


def test_batch_first_may_only_be_given_as_true():
    layer = get_layer("LSTM")
    assert layer.normalize({"hidden_size": 4, "batch_first": True}) == {"hidden_size": 4}
    with pytest.raises(LayerProblem, match="batch_first is always true"):
        layer.normalize({"hidden_size": 4, "batch_first": False})


def test_get_layer_suggests_the_closest_names():
    with pytest.raises(SpecError, match="did you mean Conv2d"):
        get_layer("Conv2D")
    with pytest.raises(SpecError, match="did you mean LSTM"):
        get_layer("lstm")
    with pytest.raises(SpecError, match="known types: .*Conv2d"):
        get_layer("Zebra")


def test_param_check_normalizes_and_explains():
    kernel = get_layer("Conv2d").param("kernel_size")
    assert kernel.check([3, 5]) == (3, 5)
    assert kernel.check(3) == 3
    with pytest.raises(LayerProblem, match=r"kernel_size=\[3, 5, 7\] is not allowed"):
        kernel.check([3, 5, 7])
    p = get_layer("Dropout").param("p")
    assert p.check(0) == 0.0 and isinstance(p.check(0), float)
    with pytest.raises(LayerProblem, match="out of range; use a number from 0 to 1"):
        p.check(1.5)
    with pytest.raises(LayerProblem, match="true or false"):
        get_layer("Linear").param("bias").check("yes")


def test_add_of_branches_that_differ_only_in_size_names_padding():
    spec = {
        "input_shape": [1, 8, 8],
        "layers": [
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "id": "a"},
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "id": "b"},
            {"type": "Add", "inputs": ["a", "b"]},
        ],
    }
    message = str(trace(spec).error)
    assert "(4, 6, 6)" in message and "(4, 4, 4)" in message and 'padding "same"' in message
    spec["layers"][1]["out_channels"] = 8
    spec["layers"][1]["padding"] = 1
    assert "padding" not in str(trace(spec).error).split("identical shapes")[1]
