"""Spec -> trace and spec -> model: shapes, counts, names, graphs, sequences, text, attention."""

from __future__ import annotations

import copy
import resource

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from core.builder import SpecModel, build_model, trace
from core.errors import SpecError
from core.facts import ModelFacts
from core.spec import validate_spec

LENET = {
    "name": "seed-lenet",
    "input_shape": [3, 32, 32],
    "layers": [
        {"type": "Conv2d", "out_channels": 6, "kernel_size": 5},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 5},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 120},
        {"type": "ReLU"},
        {"type": "Linear", "out_features": 84},
        {"type": "ReLU"},
        {"type": "Linear", "out_features": 10},
    ],
}

RESIDUAL = {
    "name": "tiny-resnet",
    "input_shape": [4, 6, 6],
    "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "id": "stem"},
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "ReLU", "id": "branch"},
        {"type": "Add", "inputs": ["stem", "branch"], "id": "sum"},
        {"type": "Conv2d", "out_channels": 3, "kernel_size": 1, "inputs": ["input"], "id": "side"},
        {"type": "Concat", "inputs": ["sum", "side"]},
        {"type": "Flatten"},
        {"type": "Linear"},
    ],
}


def test_chain_trace_gives_shapes_params_and_flops_per_layer():
    traced = trace(LENET)
    assert traced.ok and traced.error is None
    shapes = [layer.output_shape for layer in traced.layers]
    assert shapes[:7] == [
        (6, 28, 28),
        (6, 28, 28),
        (6, 14, 14),
        (16, 10, 10),
        (16, 10, 10),
        (16, 5, 5),
        (400,),
    ]
    assert traced.output_shape == (10,)
    assert [layer.params for layer in traced.layers if layer.params] == [
        456,
        2416,
        48120,
        10164,
        850,
    ]
    assert traced.params == 62_006
    model = build_model(LENET).eval()
    with FlopCounterMode(display=False) as counter:  # the real model, one sample
        model(torch.randn(1, 3, 32, 32))
    assert traced.flops == counter.get_total_flops() > 0
    assert traced.layers[0].flops == 2 * 6 * 28 * 28 * 3 * 5 * 5


def test_model_names_layers_like_hand_written_code():
    model = build_model(LENET)
    assert [name for name, _ in model.named_children()] == [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
        "flatten1",
        "fc1",
        "relu3",
        "fc2",
        "relu4",
        "fc3",
    ]
    assert isinstance(model, SpecModel) and isinstance(model.conv1, torch.nn.Conv2d)
    assert model.input_shape == (3, 32, 32) and model.spec["name"] == "seed-lenet"
    assert model.num_classes == 10 and model.input_dtype == torch.float32
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_ids_become_sanitized_unique_attribute_names():
    spec = {
        "input_shape": [4],
        "layers": [
            {"type": "Linear", "out_features": 4, "id": "block-1"},
            {"type": "ReLU", "id": "2nd"},
            {"type": "Linear", "out_features": 4, "id": "forward"},
            {"type": "Linear", "out_features": 4, "id": "class"},
            {"type": "Linear", "out_features": 4, "id": "fc1"},
            {"type": "Linear", "out_features": 2},
        ],
    }
    traced = trace(spec)
    assert [t.name for t in traced.layers] == [
        "block_1",
        "layer_2nd",
        "forward_layer",
        "class_layer",
        "fc1",
        "fc2",
    ]
    assert build_model(spec)(torch.randn(3, 4)).shape == (3, 2)


def test_graph_with_residual_add_and_concat_branch():
    traced = trace(RESIDUAL, ModelFacts(num_classes=5))
    assert traced.ok, traced.error
    by_id = {t.id: t for t in traced.layers if t.id}
    assert by_id["sum"].inputs == ["stem", "branch"]
    assert by_id["side"].inputs == ["input"]
    assert traced.layers[5].output_shape == (11, 6, 6)  # 8 + 3 channels
    assert traced.output_shape == (5,)
    model = build_model(RESIDUAL, ModelFacts(num_classes=5)).eval()
    x = torch.randn(2, 4, 6, 6)
    stem = model.stem(x)
    expected_sum = stem + torch.relu(model.conv1(stem))
    joined = torch.cat([expected_sum, model.side(x)], dim=1)
    assert torch.allclose(model(x), model.fc1(joined.flatten(1)), atol=1e-6)


def test_layers_may_read_later_ids_when_there_is_no_cycle():
    spec = {
        "input_shape": [3],
        "layers": [
            {"type": "Add", "inputs": ["a", "b"]},
            {"type": "Tanh", "id": "a", "inputs": ["input"]},
            {"type": "Sigmoid", "id": "b", "inputs": ["input"]},
            {"type": "ReLU", "inputs": ["a"]},
        ],
    }
    traced = trace(spec)
    assert traced.ok
    assert [t.index for t in traced.layers] == [1, 2, 0, 3]


def test_a_model_to_be_trained_must_end_with_one_score_per_class():
    # ends in a ReLU: fine while it is being assembled, an error once it is about to train
    spec = {"input_shape": [1, 8, 8], "layers": [{"type": "Flatten"}, {"type": "ReLU"}]}
    assert trace(spec, ModelFacts(num_classes=10)).ok
    finished = trace(spec, ModelFacts(num_classes=10), finished=True)
    assert not finished.ok
    assert str(finished.error).startswith("layer 1 ReLU: the model ends with (64,) per sample")
    assert "end with a Linear of out_features=10" in str(finished.error)
    assert len(finished.layers) == 2  # the layers still report their shapes


def test_merge_errors_name_the_inputs_by_the_ids_written_in_the_spec():
    # "x" and "input-b" are not valid attribute names; messages still say what the person wrote
    spec = {
        "input_shape": [1, 8, 8],
        "layers": [
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "id": "x"},
            {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "id": "input-b"},
            {"type": "Add", "inputs": ["x", "input-b"]},
        ],
    }
    error = str(trace(spec).error)
    assert "from 'x' and (8, 4, 4) from 'input-b'" in error, error
    spec["layers"][2] = {"type": "ReLU", "inputs": ["x", "input-b"]}
    assert "lists 2 (x, input-b)" in str(trace(spec).error)


def test_last_linear_takes_the_number_of_classes():
    spec = copy.deepcopy(LENET)
    del spec["layers"][-1]["out_features"]
    assert trace(spec, ModelFacts(num_classes=7)).output_shape == (7,)
    assert build_model(spec, ModelFacts(num_classes=3))(torch.randn(1, 3, 32, 32)).shape == (1, 3)


def test_input_shape_can_come_from_the_dataset():
    spec = {k: v for k, v in LENET.items() if k != "input_shape"}
    assert trace(spec, ModelFacts(input_shape=(3, 32, 32))).ok
    assert trace(spec, ModelFacts(input_shape=[3, 32, 32])).params == 62_006
    assert trace(LENET, ModelFacts(input_shape=(3, 32, 32))).ok  # agreeing shapes are fine


def test_recurrent_layers_are_batch_first_and_return_the_whole_sequence():
    spec = {
        "input_shape": [1, 40],
        "layers": [
            {"type": "Permute", "dims": [1, 0]},
            {"type": "LSTM", "hidden_size": 8, "bidirectional": True},
            {"type": "GRU", "hidden_size": 6},
            {"type": "RNN", "hidden_size": 5},
        ],
    }
    traced = trace(spec)
    assert [t.output_shape for t in traced.layers] == [(40, 1), (40, 16), (40, 6), (40, 5)]
    model = build_model(spec)
    out = model(torch.randn(3, 1, 40))
    assert out.shape == (3, 40, 5)
    assert model.lstm1.batch_first and model.gru1.batch_first
    # the sequence really is read along the time axis: a change at the last step leaves earlier
    # outputs of a unidirectional RNN untouched
    x = torch.randn(1, 40, 6)
    y = x.clone()
    y[0, -1] += 1.0
    assert torch.allclose(model.rnn1(x)[0][0, :-1], model.rnn1(y)[0][0, :-1])


def test_text_model_takes_token_ids_and_the_vocabulary_size():
    spec = {
        "input_shape": [12],
        "layers": [
            {"type": "Embedding", "embedding_dim": 16},
            {"type": "PositionalEncoding", "kind": "learned"},
            {"type": "MultiheadAttention", "num_heads": 4},
            {"type": "SequencePool", "mode": "mean"},
            {"type": "Linear"},
        ],
    }
    traced = trace(spec, ModelFacts(vocab_size=50, num_classes=2))
    assert traced.ok and traced.input_dtype == torch.int64
    assert traced.layers[0].params == 50 * 16
    model = build_model(spec, ModelFacts(vocab_size=50, num_classes=2))
    assert model.input_dtype == torch.int64
    assert model(torch.randint(0, 50, (3, 12))).shape == (3, 2)


def test_attention_weights_are_recorded_on_request():
    spec = {
        "input_shape": [10, 8],
        "layers": [
            {"type": "MultiheadAttention", "num_heads": 2, "id": "attn"},
            {"type": "SequencePool"},
        ],
    }
    model = build_model(spec).eval()
    x = torch.randn(3, 10, 8)
    model(x)
    assert model.attention_maps() == {} and not model.record_attention
    model.record_attention = True
    model(x)
    maps = model.attention_maps()
    assert list(maps) == ["attn"] and maps["attn"].shape == (3, 2, 10, 10)
    assert torch.allclose(maps["attn"].sum(-1), torch.ones(3, 2, 10))
    model.record_attention = False
    assert model.attention_maps() == {}


def test_trace_allocates_no_weights_so_huge_models_check_instantly(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_PARAMS", "1e11")  # above the default limit, on purpose
    spec = {
        "input_shape": [100_000],
        "layers": [
            {"type": "Linear", "out_features": 100_000},
            {"type": "Linear", "out_features": 100_000},
        ],
    }
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    traced = trace(spec)  # 20 billion parameters: 80 GB if they were real
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 500, f"tracing allocated about {grown_mib:.0f} MiB"
    assert traced.params == 2 * (100_000 * 100_000 + 100_000)


def test_trace_never_raises_on_spec_problems():
    for broken in (
        None,
        [],
        {"layers": []},
        {"layers": "Conv2d"},
        {"layers": [1, 2]},
        {"input_shape": "3x32", "layers": [{"type": "ReLU"}]},
    ):
        shape = (3,) if broken and "input_shape" not in broken else None
        traced = trace(broken, ModelFacts(input_shape=shape))
        assert not traced.ok and isinstance(traced.error, SpecError)


def test_build_model_raises_the_first_error():
    spec = copy.deepcopy(LENET)
    spec["layers"][3]["kernel_size"] = 50
    with pytest.raises(SpecError, match="^layer 3 Conv2d: its 50x50 kernel"):
        build_model(spec)


def test_validate_spec_returns_a_normalized_copy():
    spec = {
        "input_shape": [4],
        "extra": {"kept": True},
        "layers": [
            {"type": "Dropout", "p": 0},
            {"type": "Linear", "out_features": 2, "id": "out"},
        ],
    }
    before = copy.deepcopy(spec)
    normalized = validate_spec(spec)
    assert spec == before
    assert normalized["name"] == "model"
    assert normalized["layers"][0]["p"] == 0.0 and isinstance(normalized["layers"][0]["p"], float)
    assert normalized["layers"][1]["id"] == "out" and normalized["extra"] == {"kept": True}
