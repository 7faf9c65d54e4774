"""Run settings: defaults, round trips, and refusals that name the field and what is allowed."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.errors import SettingsError
from core.train.config import TrainConfig
from core.train.devices import list_devices, resolve_device


def test_defaults_round_trip_through_a_plain_dict():
    config = TrainConfig()
    assert config.epochs == 10 and config.steps is None and config.batch_size == 64
    assert config.optimizer == "adam" and config.seed == 0
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert isinstance(config.to_dict()["betas"], list)


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
        ({"momentum": -0.5}, "momentum=-0.5"),
        ({"nesterov": "yes"}, "true or false"),
        ({"grad_clip": float("inf")}, "grad_clip=inf"),
        ({"epochs": 3, "steps": 4}, "not both"),
        ({"epochs": None}, "either epochs or steps"),
        ({"nesterov": True, "optimizer": "adam"}, "nesterov"),
        ({"loss": "mse", "label_smoothing": 0.1}, "label_smoothing"),
        ({"seed": -1}, "seed=-1"),
        ({"log_every": 0}, "log_every=0"),
    ],
)
def test_bad_values_are_refused_with_field_value_and_allowed(values, expected):
    with pytest.raises(SettingsError, match=None) as caught:
        TrainConfig.from_dict(values)
    assert expected in str(caught.value)


def test_unknown_keys_are_refused_with_the_allowed_list():
    with pytest.raises(SettingsError) as caught:
        TrainConfig.from_dict({"learning_rate": 0.1})
    message = str(caught.value)
    assert "'learning_rate'" in message and "lr" in message and "batch_size" in message


def test_direct_construction_is_validated_too():
    with pytest.raises(SettingsError, match="batch_size=-3"):
        TrainConfig(batch_size=-3)
    assert TrainConfig(steps=10, epochs=None).steps == 10


def test_validate_refuses_a_batch_larger_than_the_training_set():
    with pytest.raises(SettingsError, match="batch_size=64 is larger than the training set .50"):
        TrainConfig().validate(train_size=50)
    TrainConfig().validate(train_size=64)


def test_validate_refuses_a_loss_that_does_not_fit_the_task():
    with pytest.raises(SettingsError, match="regression"):
        TrainConfig(loss="cross_entropy").validate(task="regression")


@pytest.mark.skipif(torch.cuda.device_count() > 1, reason="needs a machine without cuda:1")
def test_validate_refuses_a_device_that_is_not_there():
    with pytest.raises(SettingsError) as caught:
        TrainConfig(device="cuda:1").validate(train_size=1000)
    message = str(caught.value)
    assert message.startswith("cuda:1 is not available; this machine has: cpu")
    TrainConfig(device="cuda:1").validate(train_size=1000, check_device=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="bf16 is allowed on CUDA")
def test_bf16_needs_cuda():
    with pytest.raises(SettingsError, match="bf16"):
        TrainConfig(precision="bf16", device="cpu").validate()


def test_schema_describes_every_field():
    schema = TrainConfig.schema()
    assert [entry["name"] for entry in schema] == [f.name for f in dataclasses.fields(TrainConfig)]
    assert all(entry["help"] and "kind" in entry for entry in schema)
    optimizer = next(entry for entry in schema if entry["name"] == "optimizer")
    assert optimizer["choices"] == ("sgd", "adam", "adamw", "rmsprop", "adagrad")


def test_devices_list_the_cpu_with_a_name_and_memory():
    devices = list_devices()
    assert devices[0].id == "cpu" and devices[0].name
    assert devices[0].memory_bytes is None or devices[0].memory_bytes > 2**20
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if expected == "cpu" and torch.backends.mps.is_available():
        expected = "mps"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
