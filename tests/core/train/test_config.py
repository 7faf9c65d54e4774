"""Run settings: defaults, round trips, and refusals that name the field and what is allowed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.errors import SettingsError
from core.train.config import TrainConfig, applies, describe_use
from core.train.devices import list_devices, resolve_device

SCHEMA = {entry["name"]: entry for entry in TrainConfig.schema()}
# settings that only some optimizers or schedules read
DEPENDENT = [name for name, entry in SCHEMA.items() if "depends_on" in entry]


def test_defaults_round_trip_through_a_plain_dict():
    config = TrainConfig()
    assert config.epochs == 10 and config.steps is None and config.batch_size == 64
    assert config.optimizer == "adam" and config.seed == 0
    assert TrainConfig.from_dict(config.to_dict()) == config
    given = TrainConfig(betas=(0.8, 0.99))
    assert given.to_dict()["betas"] == [0.8, 0.99]  # JSON-ready
    assert TrainConfig.from_dict(given.to_dict()) == given


def test_steps_without_epochs_means_a_run_of_steps():
    config = TrainConfig.from_dict({"steps": 500, "betas": [0.8, 0.99], "lr": 1})
    assert config.epochs is None and config.steps == 500
    assert config.betas == (0.8, 0.99) and config.lr == 1.0


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"lr": -0.1}, "lr=-0.1"),
        ({"lr": 0}, "> 0"),
        ({"lr": "0.1"}, "lr='0.1'"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": 1.5}, "whole number"),
        ({"epochs": True}, "epochs=True"),
        ({"optimizer": "lbfgs"}, "'sgd', 'adam', 'adamw', 'rmsprop', 'adagrad'"),
        ({"scheduler": "cyclic"}, "'none', 'step', 'cosine', 'onecycle'"),
        ({"device": "gpu"}, "cuda:N"),
        ({"betas": [0.9, 1.0]}, "betas=(0.9, 1.0)"),
        ({"betas": [0.9]}, "two numbers"),
        ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
        ({"momentum": -0.5, "optimizer": "sgd"}, "momentum=-0.5"),
        ({"nesterov": "yes"}, "true or false"),
        ({"grad_clip": float("inf")}, "grad_clip=inf"),
        ({"epochs": 3, "steps": 4}, "not both"),
        ({"epochs": None}, "either epochs or steps"),
        ({"nesterov": True, "optimizer": "sgd", "momentum": 0}, "needs momentum > 0"),
        ({"loss": "mse", "label_smoothing": 0.1}, "label_smoothing"),
        ({"seed": -1}, "seed=-1"),
        ({"log_every": 0}, "log_every=0"),
    ],
)
def test_bad_values_are_refused_with_field_value_and_allowed(values, expected):
    with pytest.raises(SettingsError) as caught:
        TrainConfig.from_dict(values)
    assert expected in str(caught.value)


def test_momentum_with_adam_is_refused_naming_the_optimizers_that_use_it():
    with pytest.raises(SettingsError) as caught:
        TrainConfig.from_dict({"optimizer": "adam", "momentum": 0.5})
    assert str(caught.value) == (
        "momentum=0.5 is not used by optimizer 'adam'; only optimizer 'sgd' or 'rmsprop' use "
        "it: choose one of those or leave momentum unset"
    )


def _sample(name: str):
    """A valid value for a dependent setting that differs from "unset"."""
    entry = SCHEMA[name]
    if entry["kind"] == "bool":
        return True
    given = [value for value in entry["defaults"].values() if value is not None]
    return given[0] if given else 0.5


@pytest.mark.parametrize("name", DEPENDENT)
def test_a_setting_is_refused_by_a_choice_that_ignores_it_and_used_by_one_that_reads_it(name):
    entry = SCHEMA[name]
    owner = entry["depends_on"]
    users = list(entry["defaults"])
    value = _sample(name)
    ignoring = [choice for choice in SCHEMA[owner]["choices"] if choice not in users]
    extra = {"momentum": 0.9} if name == "nesterov" else {}  # nesterov needs momentum
    for choice in ignoring:
        with pytest.raises(SettingsError) as caught:
            TrainConfig.from_dict({owner: choice, name: value})
        message = str(caught.value)
        assert message.startswith(f"{name}=") and f"{owner} {choice!r}" in message
        assert all(repr(user) in message for user in users)
    for choice in users:
        config = TrainConfig.from_dict({owner: choice, name: value, **extra})
        assert config.effective(name) == value
        assert applies(name, {owner: choice}) and not any(
            applies(name, {owner: other}) for other in ignoring
        )


def test_unset_settings_take_the_chosen_optimizers_default():
    assert TrainConfig(optimizer="sgd").effective("momentum") == 0.9
    assert TrainConfig(optimizer="rmsprop").effective("momentum") == 0.0
    assert TrainConfig(optimizer="adamw").effective("weight_decay") == 0.01
    assert TrainConfig(optimizer="adam").effective("weight_decay") == 0.0
    assert TrainConfig(scheduler="step").effective("step_size") == 5
    assert TrainConfig().effective("lr") == 1e-3  # an independent setting is itself
    assert describe_use(SCHEMA["momentum"]) == (
        "used with optimizer sgd or rmsprop (default 0.9 for sgd; 0 for rmsprop)"
    )
    assert describe_use(SCHEMA["weight_decay"]) == "(default 0.01 for adamw; 0 for the others)"
    assert describe_use(SCHEMA["lr"]) == ""


def test_a_run_recorded_before_the_refusal_still_rebuilds_with_its_meaning():
    recorded = {**TrainConfig().to_dict(), "momentum": 0.9, "nesterov": False, "step_size": 5}
    recorded |= {"betas": [0.9, 0.999], "eps": 1e-8, "alpha": 0.99, "gamma": 0.1}
    with pytest.raises(SettingsError, match="momentum=0.9 is not used by optimizer 'adam'"):
        TrainConfig.from_dict(recorded)  # a new submission is refused ...
    config = TrainConfig.from_stored(recorded)  # ... a recorded run trains as it always did
    assert config.momentum is None and config.step_size is None and config.alpha is None
    assert config.betas == (0.9, 0.999) and config.eps == 1e-8
    sgd = TrainConfig.from_stored({**recorded, "optimizer": "sgd", "momentum": 0.7})
    assert sgd.momentum == 0.7 and sgd.betas is None


def test_unknown_keys_are_refused_with_the_allowed_list():
    with pytest.raises(SettingsError) as caught:
        TrainConfig.from_dict({"learning_rate": 0.1})
    message = str(caught.value)
    assert "'learning_rate'" in message and "lr" in message and "batch_size" in message


def test_direct_construction_is_validated_too():
    with pytest.raises(SettingsError, match="batch_size=-3"):
        TrainConfig(batch_size=-3)
    with pytest.raises(SettingsError, match="alpha=0.9 is not used by optimizer 'sgd'"):
        TrainConfig(optimizer="sgd", alpha=0.9)
    assert TrainConfig(steps=10, epochs=None).steps == 10


def test_checked_is_the_one_check_and_returns_a_typed_config():
    config = TrainConfig.checked(
        {"steps": 3, "optimizer": "sgd"}, train_size=100, task="classification"
    )
    assert isinstance(config, TrainConfig) and config.steps == 3 and config.optimizer == "sgd"
    assert TrainConfig.checked(None, train_size=64, task=None) == TrainConfig()
    assert TrainConfig.checked(config, train_size=100, task=None) is config
    with pytest.raises(SettingsError, match="batch_size=64 is larger than the training set .50"):
        TrainConfig.checked({}, train_size=50, task=None)
    with pytest.raises(SettingsError, match="regression"):
        TrainConfig.checked({"loss": "cross_entropy"}, train_size=100, task="regression")
    with pytest.raises(SettingsError, match="empty"):
        TrainConfig.checked({}, train_size=0, task=None)
    with pytest.raises(SettingsError, match="early_stopping_patience needs a validation split"):
        TrainConfig.checked(
            {"early_stopping_patience": 2}, train_size=100, task=None, has_validation=False
        )


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="needs a machine without cuda:1")
def test_a_device_that_is_not_there_is_refused_unless_another_machine_may_have_it():
    with pytest.raises(SettingsError) as caught:
        TrainConfig.checked({"device": "cuda:1"}, train_size=1000, task=None)
    message = str(caught.value)
    assert message.startswith("cuda:1 is not available; this machine has: cpu")
    queued = TrainConfig.checked(
        {"device": "cuda:1"}, train_size=1000, task=None, check_device=False
    )
    assert queued.device == "cuda:1"


@pytest.mark.skipif(torch.cuda.is_available(), reason="bf16 is allowed on CUDA")
def test_bf16_needs_cuda():
    with pytest.raises(SettingsError, match="bf16"):
        TrainConfig.checked({"precision": "bf16", "device": "cpu"}, train_size=None, task=None)


def test_schema_describes_every_field():
    schema = TrainConfig.schema()
    assert [entry["name"] for entry in schema] == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(entry["help"] and "kind" in entry for entry in schema)
    assert SCHEMA["optimizer"]["choices"] == ("sgd", "adam", "adamw", "rmsprop", "adagrad")
    for name in DEPENDENT:  # every dependent setting names real choices of a real setting
        owner = SCHEMA[name]["depends_on"]
        assert set(SCHEMA[name]["defaults"]) <= set(SCHEMA[owner]["choices"]), name


def test_devices_list_the_cpu_with_a_name_and_memory():
    devices = list_devices()
    assert devices[0].id == "cpu" and devices[0].name
    assert devices[0].memory_bytes is None or devices[0].memory_bytes > 2**20
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
