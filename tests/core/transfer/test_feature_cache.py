"""The frozen-feature cache: the body's features computed once, only the head trained on
them, with the same result as training the whole (frozen-bodied) model; checkpoints hold the
whole model."""

from __future__ import annotations

import torch

from core import runs
from core.builder import build_model
from core.data import load_dataset
from core.train import TrainConfig, fit, seed_everything
from core.train.feature_cache import cache_plan, with_feature_cache

FROZEN_BODY = {
    "name": "frozen-features",
    "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1, "frozen": True},
        {"type": "BatchNorm2d", "frozen": True},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Linear"},
    ],
}
CONFIG = TrainConfig(epochs=1, device="cpu", seed=3)


def fresh_model(data, spec=FROZEN_BODY):
    seed_everything(0)
    return build_model(spec, data.facts)


def test_training_on_cached_features_matches_training_the_whole_model():
    data = load_dataset("digits")
    whole = fresh_model(data)
    expected = fit(whole, data, CONFIG)
    model, cached_data, note = with_feature_cache(fresh_model(data), data, CONFIG)
    assert note["cut"] == "flatten1" and note["feature_shape"] == [512]
    assert tuple(cached_data.train.x.shape[1:]) == (512,)
    got = fit(model, cached_data, CONFIG)
    assert got.steps == expected.steps
    for name, tensor in whole.state_dict().items():
        assert torch.allclose(model.state_dict()[name], tensor, atol=1e-5), name
    assert abs(got.metrics["test_accuracy"] - expected.metrics["test_accuracy"]) < 0.01


def test_the_cache_applies_only_when_nothing_before_the_head_can_change():
    data = load_dataset("digits")
    assert cache_plan(fresh_model(data), CONFIG) is not None
    layers = FROZEN_BODY["layers"]
    unfrozen = {**FROZEN_BODY, "layers": [{**layers[0], "frozen": False}, *layers[1:]]}
    dropout = {**FROZEN_BODY, "layers": [*layers[:3], {"type": "Dropout"}, *layers[3:]]}
    assert cache_plan(fresh_model(data, unfrozen), CONFIG) is None
    assert cache_plan(fresh_model(data, dropout), CONFIG) is None
    no_weights = {"name": "flat", "layers": [{"type": "Flatten"}, {"type": "Linear"}]}
    assert cache_plan(fresh_model(data, no_weights), CONFIG) is None  # nothing to save
    schedule = TrainConfig(epochs=2, device="cpu", freeze_epochs=1)
    assert cache_plan(fresh_model(data), schedule) is None


def test_a_worker_run_records_the_cache_and_its_checkpoint_is_the_whole_model():
    result = runs.train_run_foreground(
        spec=FROZEN_BODY,
        dataset="digits",
        config={"epochs": 1, "device": "cpu", "body_lr_factor": 0.1},  # no body left to slow
    )
    assert result["status"] == "completed", result["error"]
    run = runs.get_run(result["run_id"])
    assert run.result["feature_cache"]["cut"] == "flatten1"
    model, _, _ = runs.load_run_model(run.id)  # the full model loads from the checkpoint
    assert model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)
