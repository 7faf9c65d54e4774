"""`explain()`: the prediction, the measured summary and the JSON document."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from core.data import Dataset, Normalization, Split
from core.errors import ExplainError
from core.explain import explain
from core.explain.summary import hide


def test_explanation_carries_prediction_top3_and_an_attribution_shaped_like_the_sample(
    trained_cnn, digits
):
    x, y = digits.test.x[0], int(digits.test.y[0])
    explanation = explain(trained_cnn, x, method="integrated_gradients", dataset=digits, label=y)
    probabilities = torch.softmax(trained_cnn(x[None]), dim=1)[0]
    assert explanation.prediction.index == int(probabilities.argmax())
    assert explanation.prediction.label == digits.class_names[explanation.prediction.index]
    assert [p["probability"] for p in explanation.probabilities] == pytest.approx(
        torch.topk(probabilities, 3).values.tolist(), abs=1e-6
    )
    assert explanation.probabilities[0]["label"] == explanation.prediction.label
    assert explanation.attribution.shape == x.shape
    assert explanation.convergence_delta is not None
    assert explanation.modality == "image"


def test_the_summary_reports_the_effect_measured_by_hiding_the_region(trained_cnn, digits, blank):
    x = digits.test.x[5]
    explanation = explain(trained_cnn, x, method="occlusion", dataset=digits)
    effect = explanation.extras["effect"]
    # re-measure by hand: hide the same pixels and run the model again
    mask = torch.zeros(8, 8, dtype=torch.bool)
    scores = explanation.attribution.sum(0).flatten()
    mask.view(-1)[torch.topk(scores, 6).indices] = True
    with torch.no_grad():
        after = torch.softmax(trained_cnn(hide(x, blank, mask)[None]), dim=1)[0]
    assert effect["probability_after"] == pytest.approx(float(after[explanation.target]), abs=1e-6)
    assert effect["hidden_fraction"] == pytest.approx(6 / 64)
    percent = f"{effect['probability_after']:.0%}"
    if effect["probability_before"] - effect["probability_after"] >= 0.05 and percent not in (
        "0%",
        "100%",
    ):
        assert f"lowers its confidence to {percent}" in explanation.summary
    assert effect["region"] in explanation.summary
    assert explanation.summary.startswith("The model")


def test_a_misclassified_sample_names_the_true_label(trained_cnn, digits):
    x = digits.test.x[0]
    predicted = int(trained_cnn(x[None]).argmax())
    wrong = (predicted + 1) % 10
    explanation = explain(trained_cnn, x, method="saliency", dataset=digits, label=wrong)
    assert f"it is actually {wrong}" in explanation.summary


def test_to_dict_is_the_cli_json_document(trained_cnn, digits):
    explanation = explain(trained_cnn, digits.test.x[1], method="grad_cam", dataset=digits)
    document = json.loads(json.dumps(explanation.to_dict()))
    for key in (
        "prediction",
        "probabilities",
        "method",
        "attribution",
        "convergence_delta",
        "summary",
    ):
        assert key in document
    assert document["convergence_delta"] is None
    assert torch.tensor(document["attribution"]).shape == (1, 8, 8)
    assert len(document["probabilities"]) == 3
    assert set(document["probabilities"][0]) == {"label", "probability"}


def test_explaining_another_class_than_the_prediction(trained_cnn, digits):
    x = digits.test.x[2]
    predicted = int(trained_cnn(x[None]).argmax())
    other = (predicted + 3) % 10
    explanation = explain(
        trained_cnn, x, method="integrated_gradients", dataset=digits, target=other
    )
    assert explanation.target == other
    assert explanation.prediction.index == predicted
    assert f"the chance of {other}" in explanation.summary


def test_a_batch_of_one_is_accepted_and_a_wrong_shape_is_refused(trained_cnn, digits):
    explanation = explain(trained_cnn, digits.test.x[:1], method="saliency", dataset=digits)
    assert explanation.attribution.shape == (1, 8, 8)
    with pytest.raises(ExplainError, match=r"shape \(1, 7, 8\) but this model takes \(1, 8, 8\)"):
        explain(trained_cnn, torch.zeros(1, 7, 8), method="saliency", dataset=digits)


def test_a_target_that_is_not_a_class_is_refused(trained_cnn, digits):
    with pytest.raises(ExplainError, match="target class 12 does not exist; this model has 10"):
        explain(trained_cnn, digits.test.x[0], method="saliency", dataset=digits, target=12)


def test_regression_runs_are_refused_with_a_reason():
    split = Split(torch.zeros(2, 3), torch.zeros(2))
    dataset = Dataset(
        name="prices",
        task="regression",
        modality="tabular",
        sample_shape=(3,),
        class_names=[],
        train=split,
        val=split,
        test=split,
        normalization=Normalization(torch.zeros(3), torch.ones(3)),
    )
    with pytest.raises(ExplainError, match="classification"):
        explain(nn.Linear(3, 1), torch.zeros(3), method="saliency", dataset=dataset)


def test_signal_summary_names_a_time_range():
    model = nn.Sequential(nn.Flatten(), nn.Linear(40, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].weight[1, 20:24] = 3.0  # only steps 20-23 speak for class 1
        model[1].bias.zero_()
    x = torch.ones(1, 40)
    explanation = explain(model, x, method="integrated_gradients", sanity_check=False)
    assert explanation.modality == "signal"
    assert "time steps 20–23 (of 40)" in explanation.summary
    assert "lowers its confidence" in explanation.summary


def test_explain_runs_on_the_requested_device(trained_cnn, digits):
    explanation = explain(
        trained_cnn, digits.test.x[0], method="saliency", dataset=digits, device="cpu"
    )
    assert explanation.attribution.device.type == "cpu"
