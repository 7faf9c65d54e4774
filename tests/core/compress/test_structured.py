"""Structured pruning: channels and units really go, the smaller spec is a valid spec that the
builder rebuilds into the same function, and what cannot be pruned is named with its reason."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from core.builder import build_model
from core.compress.structured import check_ratio, prune_structured
from core.errors import CompressError
from core.facts import ModelFacts
from core.spec import validate_spec
from core.templates import list_templates

SEQUENCE = {"input_shape": [1, 24]}


def recurrent(kind: str, **args) -> dict:
    return {
        **SEQUENCE,
        "name": f"{kind.lower()}-model",
        "layers": [
            {"type": "Permute", "dims": [1, 0]},
            {"type": "Linear", "out_features": 8},
            {"type": kind, "hidden_size": 16, **args},
            {"type": "SequencePool", "mode": "last"},
            {"type": "Linear", "out_features": 4},
        ],
    }


CONCAT = {
    "name": "two-branches",
    "input_shape": [1, 8, 8],
    "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "id": "stem"},
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "id": "a"},
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 1, "inputs": ["stem"], "id": "b"},
        {"type": "Concat", "dim": 0, "inputs": ["a", "b"]},
        {"type": "BatchNorm2d"},
        {"type": "ReLU"},
        {"type": "AdaptiveAvgPool2d", "output_size": 1},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 4},
    ],
}
TEXT_LSTM = {
    "name": "text-lstm",
    "input_shape": [20],
    "layers": [
        {"type": "Embedding", "num_embeddings": 50, "embedding_dim": 16},
        {"type": "LSTM", "hidden_size": 32},
        {"type": "SequencePool", "mode": "mean"},
        {"type": "Linear", "out_features": 3},
    ],
}
EXTRA = {
    "text-lstm": TEXT_LSTM,
    "lstm-2-layers": recurrent("LSTM", num_layers=2),
    "gru": recurrent("GRU"),
    "rnn": recurrent("RNN"),
    "bidirectional-gru": recurrent("GRU", bidirectional=True),
    "concat": CONCAT,
}
SPECS = {t.name: t.spec for t in list_templates()} | EXTRA


def facts_for(spec: dict) -> ModelFacts:
    last = spec["layers"][-1].get("out_features", 10)
    if spec["layers"][0]["type"] == "Embedding":  # token ids
        return ModelFacts(tuple(spec["input_shape"]), last, vocab_size=50, modality="text")
    return ModelFacts(input_shape=tuple(spec["input_shape"]), num_classes=last)


def example(facts: ModelFacts, count: int) -> torch.Tensor:
    if facts.modality == "text":
        return torch.randint(0, facts.vocab_size, (count, *facts.input_shape))
    return torch.randn(count, *facts.input_shape)


def sizes(model: nn.Module) -> dict[str, int]:
    """Output size of every module that has one, by name."""
    found = {}
    for name, module in model.named_modules():
        for attribute in ("out_channels", "out_features", "hidden_size", "embed_dim"):
            if isinstance(getattr(module, attribute, None), int):
                found[name] = getattr(module, attribute)
    return found


@pytest.mark.parametrize("name", sorted(SPECS))
def test_pruning_writes_back_a_smaller_spec_that_rebuilds_to_the_same_function(name):
    spec = SPECS[name]
    facts = facts_for(spec)
    torch.manual_seed(0)
    model = build_model(spec, facts).eval()
    original = copy.deepcopy(model.state_dict())
    result = prune_structured(model, spec, facts, 0.5)
    # the parent is untouched
    assert all(torch.equal(original[k], v) for k, v in model.state_dict().items())
    # the new spec is a valid spec and the builder rebuilds exactly the pruned model
    validate_spec(result.spec)
    rebuilt = build_model(result.spec, facts).eval()
    rebuilt.load_state_dict(result.model.state_dict())  # every name and shape fits
    x = example(facts, 5)
    with torch.no_grad():
        assert torch.allclose(rebuilt(x), result.model(x), atol=1e-5)
        assert result.model(x).shape == (5, facts.num_classes)
    assert result.max_abs_diff < 1e-5
    # something was removed, nothing grew, and each change is what the spec now says
    before, after = sizes(model), sizes(result.model)
    assert sum(p.numel() for p in result.model.parameters()) < sum(
        p.numel() for p in model.parameters()
    )
    assert all(after[k] <= before[k] for k in after)
    for change in result.changes:
        for key, (old, new) in change.sizes.items():
            assert new < old and result.spec["layers"][change.index][key] == new
    # the output layer keeps one output per class, and says so
    assert any("output layer" in kept.reason for kept in result.kept)


def test_residual_branches_lose_the_same_channels():
    spec = SPECS["residual-cnn"]
    result = prune_structured(build_model(spec, facts_for(spec)), spec, facts_for(spec), 0.5)
    layers = result.spec["layers"]
    by_id = {layer.get("id"): i for i, layer in enumerate(layers)}
    # block 2: the shortcut and the second convolution feed one Add, so they shrink together
    assert layers[by_id["shortcut"]]["out_channels"] == layers[by_id["block2"] - 1]["out_channels"]
    assert layers[by_id["shortcut"]]["out_channels"] == 32


def test_recurrent_units_are_removed_from_every_gate_and_stacked_layer():
    spec = SPECS["lstm-2-layers"]
    result = prune_structured(build_model(spec, facts_for(spec)), spec, facts_for(spec), 0.5)
    lstm = result.model.lstm1
    assert lstm.hidden_size == 8 and result.spec["layers"][2]["hidden_size"] == 8
    assert lstm.weight_ih_l1.shape == (4 * 8, 8) and lstm.weight_hh_l0.shape == (4 * 8, 8)


@pytest.mark.parametrize(
    ("name", "layer", "words"),
    [
        ("bidirectional-gru", "gru1", "bidirectional"),
        ("mnist1d-attention", "attention", "attention heads"),
        ("mnist1d-transformer", "fc1", "sinusoidal PositionalEncoding"),
    ],
)
def test_what_cannot_be_pruned_is_named_with_its_reason(name, layer, words):
    spec = SPECS[name]
    result = prune_structured(build_model(spec, facts_for(spec)), spec, facts_for(spec), 0.5)
    reasons = {kept.name: kept.reason for kept in result.kept}
    assert words in reasons[layer]


def test_channels_that_carry_nothing_go_first_and_the_outputs_do_not_change():
    # half the units of each hidden layer have zero weights: magnitude pruning at 50% must
    # remove exactly those, which leaves the function as it was (known by hand)
    spec = {
        "name": "half-dead",
        "input_shape": [1, 8, 8],
        "layers": [
            {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
            {"type": "ReLU"},
            {"type": "Flatten"},
            {"type": "Linear", "out_features": 16},
            {"type": "ReLU"},
            {"type": "Linear", "out_features": 3},
        ],
    }
    facts = ModelFacts(input_shape=(1, 8, 8), num_classes=3)
    torch.manual_seed(1)
    model = build_model(spec, facts).eval()
    with torch.no_grad():
        model.conv1.weight[::2] = 0
        model.conv1.bias[::2] = 0
        model.fc1.weight[::2] = 0
        model.fc1.bias[::2] = 0
    result = prune_structured(model, spec, facts, 0.5)
    x = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(result.model(x), model(x), atol=1e-5)
    assert result.model.conv1.out_channels == 4 and result.model.fc1.out_features == 8


@pytest.mark.parametrize("ratio", [0, 1, -0.2, 1.5, "half", None])
def test_ratios_outside_zero_to_one_are_refused(ratio):
    with pytest.raises(CompressError, match="ratio"):
        check_ratio(ratio)


def test_a_model_with_nothing_to_prune_is_refused_with_the_reasons():
    spec = {"input_shape": [1, 8, 8], "layers": [{"type": "Flatten"}, {"type": "Linear"}]}
    facts = ModelFacts(input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(CompressError, match="nothing in this model can be pruned.*output layer"):
        prune_structured(build_model(spec, facts), spec, facts, 0.5)
