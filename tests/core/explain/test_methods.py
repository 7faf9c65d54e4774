"""Each Captum method behind the one call shape, on models whose right answer is known."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.errors import ExplainError
from core.explain import METHODS, compute_attributions, explain
from core.explain.methods import NO_CONV_MESSAGE, occlusion_window


def test_saliency_equals_the_hand_computed_gradient_of_a_linear_model():
    model = nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.copy_(
            torch.tensor([[1.0, -2.0, 0.5, 0.0], [0.3, 4.0, -1.0, 2.0], [0, 0, 0, 1.0]])
        )
        model.bias.zero_()
    x = torch.tensor([[0.5, -1.0, 2.0, 3.0]])
    result = compute_attributions(
        model, x, method="saliency", targets=torch.tensor([1]), baselines=torch.zeros_like(x)
    )
    # d(logit 1)/dx = W[1]; Saliency reports its absolute value
    assert torch.allclose(result.values, model.weight[1].abs().unsqueeze(0))


def test_integrated_gradients_of_a_linear_model_is_weight_times_input_minus_baseline():
    model = nn.Linear(4, 2)
    x = torch.tensor([[1.0, 2.0, -1.0, 0.5]])
    baseline = torch.full_like(x, 0.25)
    result = compute_attributions(
        model, x, method="integrated_gradients", targets=torch.tensor([0]), baselines=baseline
    )
    expected = model.weight[0].detach() * (x - baseline)
    assert torch.allclose(result.values, expected, atol=1e-5)
    assert abs(float(result.convergence_delta[0])) < 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_every_method_returns_attributions_shaped_like_the_input(method, trained_cnn, digits):
    x = digits.test.x[:3]
    result = compute_attributions(
        trained_cnn,
        x,
        method=method,
        targets=digits.test.y[:3],
        baselines=digits.normalize(torch.zeros(1, 8, 8)).unsqueeze(0),
    )
    assert result.values.shape == x.shape
    assert torch.isfinite(result.values).all()
    assert (result.convergence_delta is not None) == (method == "integrated_gradients")


def test_integrated_gradients_is_complete_on_a_trained_model(trained_cnn, digits, blank):
    """Sum of attributions within 5% of f(x) - f(baseline) for the explained class."""
    x = digits.test.x[:40]
    targets = trained_cnn(x).argmax(dim=1)
    result = compute_attributions(
        trained_cnn, x, method="integrated_gradients", targets=targets, baselines=blank.unsqueeze(0)
    )
    with torch.no_grad():
        rows = torch.arange(len(x))
        change = trained_cnn(x)[rows, targets] - trained_cnn(blank.expand_as(x))[rows, targets]
    total = result.values.flatten(1).sum(dim=1)
    assert ((total - change).abs() <= 0.05 * change.abs()).all(), (total - change) / change


def test_internal_batch_size_bounds_memory_without_changing_the_answer(trained_cnn, digits, blank):
    x = digits.test.x[:1]
    options = dict(method="integrated_gradients", targets=torch.tensor([3]), baselines=blank[None])
    whole = compute_attributions(trained_cnn, x, internal_batch_size=64, **options)
    chunked = compute_attributions(trained_cnn, x, internal_batch_size=7, **options)
    assert torch.allclose(whole.values, chunked.values, atol=1e-5)


class OneRegionModel(nn.Module):
    """Only the bottom-right 6x6 block of a 16x16 image reaches the classifier."""

    def __init__(self) -> None:
        super().__init__()
        gate = torch.zeros(1, 16, 16)
        gate[:, 10:, 10:] = 1.0
        self.register_buffer("gate", gate)
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 2)
        with torch.no_grad():
            self.conv.weight.fill_(0.1)
            self.conv.bias.zero_()
            self.head.weight.fill_(0.0)
            self.head.weight[1].fill_(1.0)
            self.head.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x * self.gate)).flatten(1))


def test_grad_cam_puts_its_maximum_in_the_only_region_that_matters():
    x = torch.rand(1, 16, 16, generator=torch.Generator().manual_seed(0)) + 0.5
    explanation = explain(OneRegionModel(), x, method="grad_cam", target=1, sanity_check=False)
    cam = explanation.attribution[0]
    assert explanation.attribution.shape == x.shape
    row, col = divmod(int(cam.argmax()), 16)
    assert row >= 9 and col >= 9  # the region, give or take the convolution's one-pixel halo
    assert cam[:8, :8].abs().max() == 0
    assert "bottom-right corner" in explanation.summary


def test_grad_cam_finds_the_last_conv_of_a_signal_model_and_upsamples_to_every_step():
    model = nn.Sequential(
        nn.Conv1d(1, 4, 5, padding=2),
        nn.ReLU(),
        nn.Conv1d(4, 4, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.LazyLinear(3),
    )
    x = torch.randn(1, 40)
    model(x[None])  # materialize the lazy layer
    explanation = explain(model, x, method="grad_cam", sanity_check=False)
    assert explanation.attribution.shape == (1, 40)
    assert explanation.modality == "signal"


def test_grad_cam_on_a_model_without_convolution_says_what_to_use_instead():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(ExplainError) as error:
        explain(model, torch.randn(1, 8, 8), method="grad_cam")
    assert str(error.value) == NO_CONV_MESSAGE
    assert "use saliency or integrated_gradients" in NO_CONV_MESSAGE


def test_occlusion_window_follows_the_input_shape():
    assert occlusion_window((1, 8, 8)) == ((1, 2, 2), (1, 1, 1))
    assert occlusion_window((3, 32, 32)) == ((3, 4, 4), (3, 2, 2))
    assert occlusion_window((1, 28, 28)) == ((1, 3, 3), (1, 1, 1))
    assert occlusion_window((1, 40)) == ((1, 4), (1, 2))
    assert occlusion_window((12,)) == ((1,), (1,))


def test_occlusion_of_a_linear_model_measures_each_windows_share():
    model = nn.Linear(6, 2)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    result = compute_attributions(
        model, x, method="occlusion", targets=torch.tensor([1]), baselines=torch.zeros_like(x)
    )
    # window 1, stride 1: hiding feature i lowers the logit by w_i * x_i
    assert torch.allclose(result.values, model.weight[1].detach() * x, atol=1e-5)


def test_gradient_shap_is_reproducible(trained_cnn, digits, blank):
    options = dict(method="gradient_shap", targets=torch.tensor([0]), baselines=blank[None])
    first = compute_attributions(trained_cnn, digits.test.x[:1], **options)
    second = compute_attributions(trained_cnn, digits.test.x[:1], **options)
    assert torch.equal(first.values, second.values)


def test_unknown_method_is_refused_with_the_list_of_methods(trained_cnn, digits):
    with pytest.raises(ExplainError, match="choose one of saliency, integrated_gradients"):
        explain(trained_cnn, digits.test.x[0], method="lime", dataset=digits)
