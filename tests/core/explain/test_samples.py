"""Choosing samples: the model's mistakes, and a picture someone uploads."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.errors import ExplainError
from core.explain.samples import image_sample, misclassified


def test_misclassified_lists_exactly_the_wrong_predictions(trained_cnn, digits):
    wrong = misclassified(trained_cnn, digits, "test")
    predicted = trained_cnn(digits.test.x).argmax(dim=1)
    assert wrong == torch.nonzero(predicted != digits.test.y).flatten().tolist()


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_an_uploaded_drawing_becomes_a_normalized_sample_like_the_dataset(digits):
    paper = np.full((64, 64), 255, dtype=np.uint8)  # dark ink on white paper
    paper[8:56, 24:40] = 0  # a "1", two target pixels wide
    x = image_sample(digits, png(paper))
    assert x.shape == (1, 8, 8)
    raw = digits.denormalize(x)[0]
    assert (
        raw[1:7, 3:5].mean() > 0.8 and raw[:, 0].mean() < 0.1
    )  # white stroke on black, as trained


def test_a_file_that_is_not_an_image_is_refused(digits):
    with pytest.raises(ExplainError, match="could not read the upload as an image"):
        image_sample(digits, b"not a picture")
