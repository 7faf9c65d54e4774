"""A sweep's parameters: parsed, checked against the schemas that check runs and specs, applied.

A bad range is refused before anything is queued, naming the parameter and what is allowed."""

from __future__ import annotations

import pytest

from core import runs
from core.data import describe_dataset
from core.errors import SettingsError
from core.sweeps.create import create_sweep
from core.sweeps.params import parse_param
from core.sweeps.space import apply_params
from core.sweeps.status import list_sweeps
from tests.specs import DIGITS_CNN, TINY_MLP

DROPOUT_MLP = {
    "name": "dropout-mlp",
    "layers": [
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 16},
        {"type": "Dropout", "p": 0.5},
        {"type": "Linear"},
    ],
}


def test_param_text_reads_ranges_log_ranges_and_choices():
    assert parse_param("lr=1e-4:1e-1:log") == {"name": "lr", "low": 1e-4, "high": 0.1, "log": True}
    assert parse_param("block.0.out_channels=8:32") == {
        "name": "block.0.out_channels",
        "low": 8,
        "high": 32,
        "log": False,
    }
    assert parse_param("optimizer=adam,sgd") == {"name": "optimizer", "choices": ["adam", "sgd"]}
    assert parse_param("batch_size=32, 64") == {"name": "batch_size", "choices": [32, 64]}
    for bad in ("lr", "lr=", "=1:2", "lr=1:2:3", "lr=1:2:exp"):
        with pytest.raises(SettingsError, match="--param"):
            parse_param(bad)


def sweep(spec=TINY_MLP, *params: str, **options):
    options.setdefault("trials", 2)
    return create_sweep(
        spec=spec,
        dataset="digits",
        params=[parse_param(p) for p in params],
        settings={"epochs": 1, "device": "cpu"},
        **options,
    )


@pytest.mark.parametrize(
    ("spec", "param", "message"),
    [
        (TINY_MLP, "lr=-1:0.1", r"parameter lr=-1\.0 is refused: lr=-1\.0 is not allowed; "),
        (TINY_MLP, "lr=0:0.1:log", "parameter lr: a log range needs LOW > 0"),
        (TINY_MLP, "lr=0.1:0.01", "parameter lr: the range 0.1:0.01 is empty"),
        (TINY_MLP, "batch_size=32,5000", "batch_size=5000 is refused.*larger than the training"),
        (TINY_MLP, "batch_size=16.5:64", "parameter batch_size takes whole numbers"),
        (TINY_MLP, "optimizer=adam,lion", "optimizer='lion' is refused.*one of 'sgd'"),
        (TINY_MLP, "optimizer=adam:sgd", "optimizer is a choice setting: it takes a list"),
        (TINY_MLP, "momentum=0.5:0.99", "momentum=0.5 is refused: momentum=0.5 is not used by"),
        (TINY_MLP, "device=cpu,cuda", "device cannot be searched"),
        (TINY_MLP, "learning_rate=0.1:1", "unknown parameter 'learning_rate'; search a run"),
        (TINY_MLP, "dropout=0.1:0.5", "this model has none; add a Dropout block"),
        (DIGITS_CNN, "block.0.out_channels=0:8", r"block\.0\.out_channels=0 is refused: .*out"),
        (DIGITS_CNN, "block.0.kernel_size=3:12", r"kernel_size=12 is refused"),
        (DIGITS_CNN, "block.9.out_channels=8:16", "the model has no block '9'; use an index"),
        (DIGITS_CNN, "block.1.out_channels=8:16", "block 1 is a ReLU, which takes no arguments"),
        (DIGITS_CNN, "block.0.stride=x,y", r"block\.0\.stride='x' is refused"),
    ],
)
def test_a_bad_parameter_is_refused_naming_it_and_nothing_is_queued(spec, param, message):
    with pytest.raises(SettingsError, match=message):
        sweep(spec, param)
    assert runs.list_runs() == [] and list_sweeps() == []


def test_sweep_level_mistakes_are_refused_before_anything_is_queued():
    with pytest.raises(SettingsError, match="momentum is read by optimizer sgd, rmsprop only"):
        sweep(TINY_MLP, "optimizer=adam,adamw", "momentum=0.5:0.9")
    with pytest.raises(SettingsError, match="grid sampler needs lists of values; lr is a range"):
        sweep(TINY_MLP, "lr=0.001:0.1", sampler="grid")
    with pytest.raises(SettingsError, match="'lr' is given twice"):
        sweep(TINY_MLP, "lr=0.001:0.1", "lr=0.01,0.1")
    with pytest.raises(SettingsError, match="at least one parameter"):
        sweep(TINY_MLP)
    with pytest.raises(SettingsError, match="objective 'val_mae' is not recorded for a class"):
        sweep(TINY_MLP, "lr=0.001:0.1", objective="val_mae")
    with pytest.raises(SettingsError, match="needs a budget"):
        sweep(TINY_MLP, "lr=0.001:0.1", trials=None)
    assert runs.list_runs() == [] and list_sweeps() == []


def test_a_trial_s_values_land_in_its_model_and_settings_checked_like_a_run():
    info = describe_dataset("digits")
    base = {"epochs": 2, "optimizer": "sgd", "momentum": 0.8, "device": "cpu"}
    spec, settings = apply_params(
        DROPOUT_MLP,
        base,
        {"block.1.out_features": 24, "dropout": 0.25, "optimizer": "adam", "lr": 0.01},
        info,
    )
    assert spec["layers"][1]["out_features"] == 24 and spec["layers"][2]["p"] == 0.25
    assert DROPOUT_MLP["layers"][1]["out_features"] == 16  # the base model is untouched
    assert settings["optimizer"] == "adam" and settings["lr"] == 0.01
    assert settings["momentum"] is None  # adam does not read sgd's momentum: dropped
    _, with_sgd = apply_params(DROPOUT_MLP, base, {"optimizer": "sgd"}, info)
    assert with_sgd["momentum"] == 0.8
    spec, settings = apply_params(DIGITS_CNN, base, {"block.0.out_channels": 8.0}, info)
    assert spec["layers"][0]["out_channels"] == 8 and isinstance(
        spec["layers"][0]["out_channels"], int
    )


def test_a_block_is_named_as_the_layer_table_names_it():
    info = describe_dataset("digits")
    base = {"epochs": 1, "device": "cpu"}
    # conv1 / fc1: the names `studio check` and the Build page's layer table show
    spec, _ = apply_params(
        DIGITS_CNN, base, {"block.conv1.out_channels": 8, "block.fc1.out_features": 32}, info
    )
    assert spec["layers"][0]["out_channels"] == 8 and spec["layers"][4]["out_features"] == 32
    with pytest.raises(SettingsError, match=r"no block 'conv9'.*a name \(conv1, relu1, pool1"):
        create_sweep(
            spec=DIGITS_CNN,
            dataset="digits",
            settings=base,
            params=[parse_param("block.conv9.out_channels=8,16")],
            trials=2,
        )
