"""The checks that say when not to trust an explanation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.explain import explain
from core.explain.sanity import (
    RANDOMIZATION_THRESHOLD,
    convergence_warning,
    randomization_warning,
    randomized_copy,
    spearman,
)

from .conftest import digits_cnn


def test_spearman_matches_hand_computed_ranks():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == -1.0
    # ties share their average rank: ranks (1.5, 1.5, 3) vs (1, 2, 3) -> rho = sqrt(3)/2
    assert abs(spearman([0, 0, 5], [1, 2, 3]) - np.sqrt(3) / 2) < 1e-12
    assert spearman([1, 1, 1], [1, 2, 3]) == 0.0  # constant: no ranking to agree with


def test_convergence_warning_fires_only_when_delta_is_large_for_the_change():
    assert convergence_warning(0.01, 2.0) is None
    message = convergence_warning(0.5, 2.0)
    assert message.startswith("This explanation may be unreliable")
    assert "25%" in message


def test_randomized_copy_changes_every_weight_and_leaves_the_model_alone(trained_cnn):
    before = {k: v.clone() for k, v in trained_cnn.state_dict().items()}
    copy = randomized_copy(trained_cnn, seed=0)
    for name, parameter in copy.named_parameters():
        assert not torch.equal(parameter, before[name]), name
    for name, value in trained_cnn.state_dict().items():
        assert torch.equal(value, before[name])


class FixedFeatureModel(nn.Module):
    """Its decision comes from a fixed template (a buffer, not a weight); the learnable part
    is tiny. Whatever its weights, the explanation is the same: it reflects no learning."""

    def __init__(self) -> None:
        super().__init__()
        template = torch.linspace(-1, 1, 64).view(1, 8, 8)
        self.register_buffer("template", torch.stack([template, -template]))  # (2, 1, 8, 8)
        self.learned = nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fixed = (x.unsqueeze(1) * self.template).flatten(2).sum(-1) * 10  # (batch, 2)
        return fixed + 1e-3 * self.learned(x.flatten(1))


def test_randomization_check_fires_when_the_explanation_ignores_the_weights(digits):
    for method in ("saliency", "integrated_gradients", "occlusion"):
        explanation = explain(FixedFeatureModel(), digits.test.x[0], method=method, dataset=digits)
        assert explanation.randomization_correlation > RANDOMIZATION_THRESHOLD, method
        assert any("barely depends on what the model learned" in w for w in explanation.warnings)
        assert "caution" in explanation.summary


def test_randomization_check_is_quiet_on_a_trained_model(trained_cnn, digits):
    for method in ("saliency", "integrated_gradients", "gradient_shap", "occlusion", "grad_cam"):
        correlations = []
        for index in range(4):
            explanation = explain(trained_cnn, digits.test.x[index], method=method, dataset=digits)
            correlations.append(explanation.randomization_correlation)
            assert not any("barely depends" in w for w in explanation.warnings), (method, index)
        assert np.mean(correlations) < 0.3, method


def test_an_untrained_model_is_not_mistaken_for_a_weightless_one(digits):
    """Adebayo's check compares with *other* random weights, so a randomly initialized model
    (which did learn nothing) still gets maps that change with its weights; the check is about
    whether the *method* looks at the weights at all, not whether training worked."""
    torch.manual_seed(3)
    untrained = digits_cnn().eval()
    explanation = explain(untrained, digits.test.x[0], method="saliency", dataset=digits)
    assert explanation.randomization_correlation < RANDOMIZATION_THRESHOLD


def test_randomization_warning_text():
    assert randomization_warning(0.2) is None
    assert "random weights gives a similar picture" in randomization_warning(0.9)


def test_sanity_check_can_be_skipped(trained_cnn, digits):
    explanation = explain(
        trained_cnn, digits.test.x[0], method="saliency", dataset=digits, sanity_check=False
    )
    assert explanation.randomization_correlation is None
