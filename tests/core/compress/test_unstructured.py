"""Unstructured pruning: exactly the share asked of the weights becomes zero, globally ranked,
made permanent, shapes unchanged, each layer's sparsity reported."""

from __future__ import annotations

import pytest
import torch

from core.builder import build_model
from core.compress.unstructured import NOT_FASTER, prunable_weights, prune_unstructured
from core.templates import get_template


@pytest.mark.parametrize(
    ("name", "ratio"), [("digits-cnn", 0.3), ("mnist1d-gru", 0.8), ("mnist1d-attention", 0.55)]
)
def test_the_sparsity_equals_the_ratio_and_the_model_keeps_its_shapes(name, ratio):
    spec = get_template(name).spec
    torch.manual_seed(0)
    model = build_model(spec).eval()
    result = prune_unstructured(model, ratio)
    weights = [getattr(m, n) for m, n in prunable_weights(result.model)]
    total = sum(w.numel() for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    assert abs(zeros / total - ratio) <= 1 / total + 1e-4
    assert result.sparsity == pytest.approx(zeros / total)
    # permanent: plain parameters again, no masks or hooks left, same names and shapes
    assert not any(n.endswith(("_orig", "_mask")) for n, _ in result.model.named_parameters())
    assert {k: v.shape for k, v in result.model.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    x = torch.randn(3, *model.input_shape)
    assert result.model(x).shape == (3, 10)
    # the parent keeps its weights
    assert all(int((getattr(m, n) == 0).sum()) == 0 for m, n in prunable_weights(model))


def test_global_ranking_takes_more_from_layers_of_small_weights_and_reports_each_layer():
    spec = get_template("digits-cnn").spec
    model = build_model(spec).eval()
    with torch.no_grad():
        model.conv2.weight.mul_(1e-3)  # the smallest weights of the model by far (4,608)
    result = prune_unstructured(model, 0.5)
    by_name = {layer.name: layer for layer in result.layers}
    assert set(by_name) == {"conv1.weight", "conv2.weight", "fc1.weight", "fc2.weight"}
    assert by_name["conv2.weight"].sparsity == 1.0
    assert by_name["fc1.weight"].sparsity < 0.5
    document = result.to_dict()
    assert document["note"] == NOT_FASTER and "no faster on a CPU" in NOT_FASTER
