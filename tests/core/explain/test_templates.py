"""Every shipped template can be explained by every method that applies to it."""

from __future__ import annotations

import pytest
import torch

from core.errors import ExplainError
from core.explain import METHODS, attention_maps, explain
from core.explain.layers import find_last_conv
from core.explain.methods import NO_CONV_MESSAGE
from core.facts import ModelFacts

builder = pytest.importorskip("core.builder")
templates = pytest.importorskip("core.templates")

TEMPLATES = [t.name for t in templates.list_templates()]


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {
        name: builder.build_model(
            templates.get_template(name).spec, ModelFacts(num_classes=10)
        ).eval()
        for name in TEMPLATES
    }


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_method_on_the_template(name, models):
    model = models[name]
    x = torch.randn(model.input_shape)
    for method in METHODS:
        if method == "grad_cam" and find_last_conv(model) is None:
            with pytest.raises(ExplainError, match=NO_CONV_MESSAGE):
                explain(model, x, method=method, sanity_check=False)
            continue
        explanation = explain(model, x, method=method, sanity_check=False)
        assert explanation.attribution.shape == x.shape, method
        assert torch.isfinite(explanation.attribution).all(), method
        assert explanation.summary.startswith("The model")


@pytest.mark.parametrize("name", [n for n in TEMPLATES if "attention" in n or "transformer" in n])
def test_attention_templates_show_their_maps(name, models):
    model = models[name]
    maps = attention_maps(model, torch.randn(model.input_shape))
    assert maps, name
    time = model.input_shape[-1]
    for attention in maps:
        assert attention.weights.shape[-2:] == (time, time)
        assert abs(attention.weights.sum(-1) - 1).max() < 1e-4
    assert model.record_attention is False  # switched back off
