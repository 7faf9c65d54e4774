"""Every kind of spec problem gets a message naming the layer (index, type, id) and the fix.

The first problem stops the trace; the layers before it keep their shapes.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

from core.builder import trace
from core.errors import SpecError
from core.facts import ModelFacts
from core.layers import Construct, LayerContext, LayerProblem
from core.spec import check_shape, load_spec, validate_spec


def error_of(layers, input_shape=(3, 16, 16), **options) -> SpecError:
    facts = ModelFacts(input_shape=input_shape, **options)
    traced = trace({"name": "t", "layers": layers}, facts)
    assert not traced.ok and isinstance(traced.error, SpecError)
    return traced.error


def test_unknown_type_suggests_the_closest_name():
    error = error_of([{"type": "ReLU"}, {"type": "Conv2D", "out_channels": 4}])
    assert str(error).startswith("layer 1 Conv2D: unknown layer type 'Conv2D'")
    assert "did you mean Conv2d" in str(error)
    assert (error.index, error.layer_type) == (1, "Conv2D")


def test_unknown_argument_lists_the_allowed_ones():
    error = error_of([{"type": "Conv2d", "out_channels": 4, "kernal_size": 3, "id": "first"}])
    message = str(error)
    assert message.startswith("layer 0 Conv2d (id first): unknown argument 'kernal_size'")
    assert "did you mean kernel_size?" in message
    assert "out_channels, kernel_size, stride, padding" in message
    assert error.layer_id == "first"


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ({"type": "Dropout", "p": 1.5}, "p=1.5 is out of range; use a number from 0 to 1"),
        (
            {"type": "Conv2d", "out_channels": 0, "kernel_size": 3},
            "out_channels=0 is out of range; use a whole number from 1 to",
        ),
        (
            {"type": "Conv2d", "out_channels": 4, "kernel_size": "3"},
            'kernel_size="3" is not allowed; use a whole number from 1 to 1024 (or a list of 2)',
        ),
        ({"type": "GELU", "approximate": "fast"}, "use one of 'none', 'tanh'"),
        ({"type": "Conv2d", "out_channels": 4}, "missing argument kernel_size"),
    ],
)
def test_bad_values_say_what_is_allowed(layer, expected):
    error = error_of([{"type": "ReLU"}, layer])
    assert str(error).startswith(f"layer 1 {layer['type']}: ")
    assert expected in str(error)


def test_kernel_larger_than_its_input_says_how_to_fix_it():
    layers = [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 5},
    ]
    traced = trace({"layers": layers}, ModelFacts(input_shape=(3, 14, 14)))
    assert str(traced.error) == (
        "layer 4 Conv2d: its 5x5 kernel does not fit the 3x3 input it receives; use "
        "kernel_size ≤ 3, add padding, or remove a pooling layer before it"
    )
    # the layers before the problem keep their shapes
    assert [t.output_shape for t in traced.layers] == [
        (8, 12, 12),
        (8, 12, 12),
        (8, 6, 6),
        (8, 3, 3),
    ]
    assert traced.params == 8 * 3 * 9 + 8


def test_pooling_window_and_1d_kernel_messages():
    assert "its 4x4 window does not fit the 3x3 input" in str(
        error_of([{"type": "MaxPool2d", "kernel_size": 4}], input_shape=(1, 3, 3))
    )
    assert (
        "its kernel of 7 does not fit the length-5 input it receives; use kernel_size ≤ 5"
        in str(
            error_of([{"type": "Conv1d", "out_channels": 2, "kernel_size": 7}], input_shape=(1, 5))
        )
    )


def test_a_dilated_kernel_is_named_as_written_with_the_span_it_covers():
    conv2d = {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "dilation": 5}
    assert str(error_of([conv2d], input_shape=(1, 8, 8))) == (
        "layer 0 Conv2d: its 3x3 kernel with dilation 5 spans 11x11 and does not fit the 8x8 "
        "input it receives; use kernel_size ≤ 2, a smaller dilation, or add padding"
    )
    conv1d = {"type": "Conv1d", "out_channels": 4, "kernel_size": 3, "dilation": 6}
    assert "its kernel of 3 with dilation 6 spans 13 and does not fit the length-10 input" in str(
        error_of([conv1d], input_shape=(2, 10))
    )


def test_dangling_inputs_reference_lists_the_known_ids():
    error = error_of(
        [
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "id": "stem"},
            {"type": "ReLU", "id": "act"},
            {"type": "Add", "inputs": ["stem", "atc"]},
        ]
    )
    message = str(error)
    assert message.startswith("layer 2 Add: inputs refers to 'atc' (did you mean 'act'?)")
    assert "known ids: 'stem', 'act'" in message


def test_cycle_is_named():
    traced = trace(
        {
            "input_shape": [4],
            "layers": [
                {"type": "ReLU"},
                {"type": "Tanh", "id": "a", "inputs": ["b"]},
                {"type": "Sigmoid", "id": "b", "inputs": ["a"]},
            ],
        }
    )
    assert str(traced.error).startswith(
        "layer 1 Tanh (id a): its inputs form a cycle (a -> b -> a)"
    )
    assert [t.index for t in traced.layers] == [0]


def test_duplicate_ids_are_refused():
    error = error_of([{"type": "ReLU", "id": "x1"}, {"type": "Tanh", "id": "x1"}])
    assert str(error) == (
        "layer 1 Tanh (id x1): id 'x1' is already used by layer 0; ids must be unique"
    )


def test_merge_of_incompatible_shapes_shows_both():
    error = error_of(
        [
            {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "id": "a"},
            {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1, "id": "b"},
            {"type": "Add", "inputs": ["a", "b"]},
        ]
    )
    assert str(error).startswith(
        "layer 2 Add: cannot add (8, 16, 16) from 'a' and (16, 16, 16) from 'b'"
    )
    concat = error_of(
        [
            {"type": "MaxPool2d", "kernel_size": 2, "id": "a"},
            {"type": "Identity", "id": "b", "inputs": ["input"]},
            {"type": "Concat", "inputs": ["a", "b"]},
        ]
    )
    assert "cannot join (3, 8, 8) from 'a' and (3, 16, 16) from 'b' along dim 0" in str(concat)
    single = error_of([{"type": "ReLU"}, {"type": "Add"}])
    assert 'Add sums two or more inputs but receives one; list them in "inputs"' in str(single)


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "LSTM", "hidden_size": 8},
        {"type": "GRU", "hidden_size": 8},
        {"type": "MultiheadAttention", "num_heads": 2},
        {"type": "TransformerEncoderLayer", "nhead": 2},
    ],
)
def test_recurrent_or_attention_layer_fed_an_image_suggests_a_reshape(layer):
    message = str(error_of([layer], input_shape=(3, 16, 16)))
    assert message.startswith(f"layer 0 {layer['type']}: ")
    assert "sequence shaped (time, features) but this one receives an image (3, 16, 16)" in message
    assert '{"type": "Permute", "dims": [1, 0, 2]}' in message
    assert '{"type": "Reshape", "shape": [16, 48]}' in message
    gray = str(error_of([layer], input_shape=(1, 28, 28)))
    assert '{"type": "Reshape", "shape": [28, 28]}' in gray


def test_linear_fed_an_image_suggests_flatten():
    message = str(error_of([{"type": "Linear", "out_features": 10}], input_shape=(16, 5, 5)))
    assert message == (
        "layer 0 Linear: it receives an image (16, 5, 5) but works on flat features or sequences; "
        'add {"type": "Flatten"} before it (it would then receive 400 features)'
    )


def test_wrong_rank_for_convolutions():
    conv1d = str(error_of([{"type": "Conv1d", "out_channels": 4, "kernel_size": 3}]))
    assert "needs a signal shaped (channels, length) but receives an image (3, 16, 16)" in conv1d
    assert "use Conv2d for images" in conv1d
    conv2d = str(
        error_of([{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}], input_shape=(1, 40))
    )
    assert "needs an image shaped (channels, height, width" in conv2d
    assert "use Conv1d for signals" in conv2d


def test_heads_must_divide_the_features():
    message = str(error_of([{"type": "MultiheadAttention", "num_heads": 3}], input_shape=(10, 8)))
    assert "num_heads=3 must divide the 8 features it receives; use 1, 2, 4, 8 heads" in message


def test_last_linear_without_out_features_needs_classes():
    layers = [{"type": "Flatten"}, {"type": "Linear"}]
    message = str(error_of(layers))
    assert message.startswith("layer 1 Linear: out_features is missing")
    assert "pass --dataset NAME or set out_features" in message
    early = str(
        error_of([{"type": "Flatten"}, {"type": "Linear"}, {"type": "Linear", "out_features": 2}])
    )
    assert "only the last Linear may leave it out" in early


def test_input_shape_missing_or_conflicting():
    missing = trace({"layers": [{"type": "ReLU"}]}).error
    assert "no input_shape" in str(missing) and "--dataset" in str(missing)
    assert missing.index is None
    conflict = trace(
        {"input_shape": [3, 32, 32], "layers": [{"type": "ReLU"}]},
        ModelFacts(input_shape=(1, 8, 8)),
    ).error
    assert "[3, 32, 32] conflicts with the data's sample shape [1, 8, 8]" in str(conflict)


def test_text_problems():
    no_vocab = str(error_of([{"type": "Embedding", "embedding_dim": 8}], input_shape=(10,)))
    assert "num_embeddings (the vocabulary size) is unknown" in no_vocab
    assert "--vocab-size" in no_vocab
    small = str(
        error_of(
            [{"type": "Embedding", "num_embeddings": 10, "embedding_dim": 8}],
            input_shape=(10,),
            vocab_size=50,
        )
    )
    assert "smaller than the dataset's vocabulary of 50 tokens" in small
    floats = str(
        error_of(
            [{"type": "ReLU"}, {"type": "Embedding", "embedding_dim": 8}],
            input_shape=(10,),
            vocab_size=50,
        )
    )
    assert floats.startswith("layer 1 Embedding: it turns token ids")
    ids = str(error_of([{"type": "Linear", "out_features": 2}], input_shape=(10,), modality="text"))
    assert "only an Embedding layer can read" in ids


def test_reshape_and_permute_problems():
    reshape = str(error_of([{"type": "Reshape", "shape": [20, 3]}], input_shape=(1, 40)))
    assert "shape=[20, 3] holds 60 values but its input (1, 40) holds 40" in reshape
    permute = str(error_of([{"type": "Permute", "dims": [0, 1, 2]}], input_shape=(1, 40)))
    assert "dims=[0, 1, 2] is not an ordering of its input's 2 dimensions" in permute
    assert "e.g. [1, 0]" in permute


def test_several_inputs_to_a_single_input_layer():
    message = str(
        error_of([{"type": "ReLU", "id": "a"}, {"type": "Tanh", "inputs": ["a", "input"]}])
    )
    assert 'it takes one input but "inputs" lists 2 (a, input)' in message
    assert "Add or Concat" in message


def test_document_level_problems():
    assert "unknown top-level key 'layer'; did you mean 'layers'?" in str(
        trace({"layer": [{"type": "ReLU"}]}).error
    )
    assert "did you mean 'input_shape'" in str(
        trace({"input_shap": [3], "layers": [{"type": "ReLU"}]}).error
    )
    assert 'non-empty "layers" list' in str(trace({"layers": []}).error)
    assert 'missing "type"' in str(error_of([{"out_channels": 3}]))
    with pytest.raises(SpecError, match="unknown argument 'bogus'"):
        validate_spec({"layers": [{"type": "ReLU", "bogus": 1}]})


def test_raw_pytorch_errors_are_translated_to_one_line():
    class Fails(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied\nTraceback (most...)")

    from core.builder import run_on_meta

    with pytest.raises(LayerProblem) as caught:
        run_on_meta(
            Construct(Fails, {}), [torch.empty(1, 4, device="meta")], LayerContext(shapes=[(4,)])
        )
    message = str(caught.value)
    assert message == (
        "PyTorch cannot apply it to the (4,) input it receives (mat1 and mat2 shapes cannot be "
        "multiplied)"
    )


def test_load_spec_names_the_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{\n  "layers": [\n    {"type": "ReLU",}\n  ]\n}\n')
    with pytest.raises(SpecError, match=r"bad.json: not valid JSON at line 3, column"):
        load_spec(path)
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "missing.json")


def test_model_must_end_with_one_score_per_class_when_classes_are_known():
    sequence = [
        {"type": "Permute", "dims": [1, 0]},
        {"type": "GRU", "hidden_size": 8},
        {"type": "Linear"},
    ]
    message = str(error_of(sequence, input_shape=(1, 40), num_classes=10))
    assert message.startswith("layer 2 Linear: the model ends with (40, 10) per sample")
    assert '{"type": "SequencePool"}' in message
    fixed = [{"type": "Flatten"}, {"type": "Linear", "out_features": 10}]
    assert "out_features=3" in str(error_of(fixed, num_classes=3))
    assert trace({"layers": fixed}, ModelFacts(input_shape=(3, 16, 16), num_classes=10)).ok


def test_common_non_layers_get_a_direct_answer():
    message = str(error_of([{"type": "Flatten"}, {"type": "Softmax"}]))
    assert message.startswith("layer 1 Softmax: Softmax is not a studio layer")
    assert "loss applies softmax itself" in message
    assert 'use "Linear"' in str(error_of([{"type": "Dense"}]))


def test_images_of_the_wrong_rank_get_a_concrete_reshape():
    conv = [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}]
    assert '{"type": "Reshape", "shape": [1, 28, 28]}' in str(error_of(conv, input_shape=(28, 28)))
    assert '{"type": "Reshape", "shape": [1, 28, 28]}' in str(error_of(conv, input_shape=(784,)))


def test_unfinished_model_traces_but_does_not_build_for_a_dataset():
    from core.builder import build_model

    spec = {
        "input_shape": [1, 8, 8],
        "layers": [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3}],
    }
    assert trace(spec, ModelFacts(num_classes=10)).ok  # still being assembled: no head yet
    with pytest.raises(SpecError, match=r"ends with \(4, 6, 6\) per sample .* add "):
        build_model(spec, ModelFacts(num_classes=10))


# ---- values that used to pass check and fail later ------------------------------------------


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ({"type": "Dropout", "p": float("nan")}, "p=NaN is not allowed; use a number from 0 to 1"),
        ({"type": "LeakyReLU", "negative_slope": float("inf")}, "negative_slope=Infinity is not"),
        ({"type": "LayerNorm", "eps": float("-inf")}, "eps=-Infinity is not allowed"),
        ({"type": "Dropout", "p": 10**400}, "p=1.000e+400 is not allowed"),
    ],
)
def test_nan_and_infinite_decimals_are_refused_at_check(layer, expected):
    with pytest.raises(SpecError, match=re.escape(expected)):
        validate_spec({"input_shape": [4], "layers": [layer]})
    assert expected in str(error_of([layer], input_shape=(4,)))


def test_concat_dim_error_gives_the_real_range():
    layers = [
        {"type": "Tanh", "id": "a"},
        {"type": "Sigmoid", "inputs": ["input"], "id": "b"},
        {"type": "Concat", "inputs": ["a", "b"], "dim": 9},
    ]
    flat = str(error_of(layers, input_shape=(6,)))
    assert "dim=9 does not exist in (6,); it has one dimension: use 0 (or -1)" in flat
    assert "-8" not in flat
    image = str(error_of(layers, input_shape=(3, 4, 4)))
    assert "use 0 to 2 (or -3 to -1 from the end)" in image


def test_nn_module_attribute_ids_get_their_own_names():
    traced = trace(
        {"input_shape": [4], "layers": [{"type": "ReLU", "id": "training"}, {"type": "Tanh"}]}
    )
    assert traced.ok and traced.layers[0].name == "training_layer"
    from core.builder import build_model

    model = build_model({"input_shape": [4], "layers": [{"type": "ReLU", "id": "training"}]})
    assert model.training is True and isinstance(model.training_layer, torch.nn.ReLU)


# ---- limits: refused at once, with the number and the limit ---------------------------------


def linears(*widths):
    return [{"type": "Linear", "out_features": w} for w in widths]


def test_estimated_parameters_past_the_limit_stop_the_check_at_that_layer():
    error = error_of(linears(1_000_000, 1_000_000), input_shape=(4,))
    message = str(error)
    assert error.index == 1
    assert "the model reaches 1,000,006,000,000 parameters here" in message
    assert "the limit is 2,000,000,000 (STUDIO_MAX_PARAMS)" in message


def test_parameter_and_activation_limits_follow_the_settings(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_PARAMS", "100")
    assert "the limit is 100 (STUDIO_MAX_PARAMS)" in str(error_of(linears(30), input_shape=(4,)))
    monkeypatch.setenv("STUDIO_MAX_PARAMS", "1e9")
    monkeypatch.setenv("STUDIO_MAX_ACTIVATION_MB", "1")
    error = error_of([{"type": "Conv2d", "out_channels": 64, "kernel_size": 3}], (3, 128, 128))
    assert "one sample's layer outputs reach 4.1 MB here; the limit is 1.0 MB" in str(error)


def test_too_many_layers_are_refused_before_tracing(monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_SPEC_LAYERS", "50")
    spec = {"input_shape": [4], "layers": [{"type": "ReLU"}] * 51}
    message = "the spec has 51 layers; at most 50 are allowed (STUDIO_MAX_SPEC_LAYERS)"
    assert str(trace(spec).error) == message
    with pytest.raises(SpecError, match=re.escape(message)):
        validate_spec(spec)


def test_deep_nesting_is_refused_by_depth(tmp_path):
    nested = {"input_shape": [4], "layers": [{"type": "ReLU"}], "extra": [[[[[[[[[[]]]]]]]]]]}
    assert trace(nested).ok  # 11 levels: within the limit
    deep = {"input_shape": [4], "layers": [{"type": "ReLU"}], "extra": []}
    inner = deep["extra"]
    for _ in range(40):
        inner.append([])
        inner = inner[0]
    assert "lists and objects nested 42 levels deep; a spec may nest at most 32" in str(
        trace(deep).error
    )
    path = tmp_path / "deep.json"
    path.write_text('{"layers": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(SpecError, match=r"deep.json: lists and objects nested 5,001 levels deep"):
        load_spec(path)


def test_spec_files_past_the_size_limit_are_not_read_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_SPEC_KB", "1")
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"name": "x" * 5000, "layers": [{"type": "ReLU"}]}))
    with pytest.raises(SpecError, match=r"big.json: 5,0\d\d bytes, larger than 1,024 bytes"):
        load_spec(path)
    with pytest.raises(SpecError, match=r"/dev/zero: larger than 1,024 bytes"):
        load_spec("/dev/zero")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"\xff\xfe{}", "not UTF-8 text (byte 0xff at offset 0)"),
        (b'{"input_shape": [' + b"9" * 5000 + b"]}", "not a usable JSON document"),
        (b"[1, 2]", 'a spec is a JSON object with "layers", not list'),
    ],
)
def test_odd_spec_files_get_one_clear_error(tmp_path, text, expected):
    path = tmp_path / "odd.json"
    path.write_bytes(text)
    with pytest.raises(SpecError, match=re.escape(expected)):
        load_spec(path)


def test_input_shapes_too_large_for_torch_are_refused_with_the_numbers():
    huge = trace({"input_shape": [12345678901234567890], "layers": [{"type": "ReLU"}]})
    assert str(huge.error) == (
        "the spec's input_shape [1.23e+19] holds more than 2,147,483,647 numbers per sample; "
        "real samples hold at most millions"
    )
    product = trace({"input_shape": [65536, 65536], "layers": [{"type": "ReLU"}]})
    assert "[65536, 65536] holds more than 2,147,483,647 numbers" in str(product.error)
    with pytest.raises(SpecError, match=r"^the input shape \[1\.00e\+20\] holds more than"):
        check_shape((10**20,), "the input shape")  # --input-shape and the data's shape
