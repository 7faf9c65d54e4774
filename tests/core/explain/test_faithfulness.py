"""Faithfulness: hiding what a method points at hurts the model more than hiding at random."""

from __future__ import annotations

import pytest
import torch

from core.explain import METHODS, compute_attributions, position_scores
from core.explain.summary import hide, top_mask

SAMPLES = 300  # of the 397 digits test images


@pytest.mark.parametrize("method", METHODS)
def test_hiding_the_most_attributed_tenth_lowers_confidence_more_than_a_random_tenth(
    method, trained_cnn, digits, blank
):
    x = digits.test.x[:SAMPLES]
    with torch.no_grad():
        probabilities = torch.softmax(trained_cnn(x), dim=1)
    predicted = probabilities.argmax(dim=1)
    result = compute_attributions(
        trained_cnn,
        x,
        method=method,
        targets=predicted,
        baselines=blank.unsqueeze(0),
        shap_baselines=digits.train.x[:16],
    )
    generator = torch.Generator().manual_seed(0)
    top, random = [], []
    for attribution, sample in zip(result.values, x, strict=True):
        mask = top_mask(position_scores(attribution, "image"))  # (8, 8), 6 pixels
        shuffled = mask.flatten()[torch.randperm(64, generator=generator)].view(8, 8)
        top.append(hide(sample, blank, mask))
        random.append(hide(sample, blank, shuffled))
    rows = torch.arange(len(x))
    with torch.no_grad():
        after_top = torch.softmax(trained_cnn(torch.stack(top)), dim=1)[rows, predicted]
        after_random = torch.softmax(trained_cnn(torch.stack(random)), dim=1)[rows, predicted]
    before = probabilities[rows, predicted]
    drop_top = float((before - after_top).mean())
    drop_random = float((before - after_random).mean())
    assert drop_top > drop_random, (method, drop_top, drop_random)
    print(f"{method}: top 10% drop {drop_top:.3f}, random 10% drop {drop_random:.3f}")
