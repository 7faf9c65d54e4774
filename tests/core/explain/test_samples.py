"""Choosing samples: the model's mistakes, and a picture someone uploads."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import Split
from core.errors import ExplainError
from core.explain.samples import drawing_colors, drawn_sample, image_sample, misclassified


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


def canvas(ink: int, paper: int | None) -> np.ndarray:
    """A 280x280 RGBA drawing with one thick stroke in the top-left corner; paper None is a
    transparent background, as the canvas sends when it has no background colour."""
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    if paper is not None:
        rgba[...] = (paper, paper, paper, 255)
    rgba[0:105, 0:105] = (ink, ink, ink, 255)  # the 3x3 top-left cells of 8x8
    return rgba


@pytest.mark.parametrize(
    ("ink", "paper"),
    [(255, 0), (255, None), (0, 255)],
    ids=["white-on-black", "on-clear", "black-on-white"],
)
def test_a_drawn_stroke_stays_where_it_was_drawn_in_the_datasets_colours(digits, ink, paper):
    x = drawn_sample(digits, canvas(ink, paper))
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32
    raw = digits.denormalize(x)[0]  # digits are white ink on black paper
    assert raw[0:3, 0:3].min() > 0.9, raw
    assert raw[3:, :].max() < 0.1 and raw[:, 3:].max() < 0.1, raw
    assert torch.allclose(digits.normalize(digits.denormalize(x)), x, atol=1e-5)


def test_the_canvas_and_the_drawing_follow_a_dataset_of_dark_ink_on_light_paper(digits):
    assert drawing_colors(digits) == ("#FFFFFF", "#000000")  # digits: white ink on black
    paper = replace(
        digits,
        train=Split(digits.normalize(1 - digits.denormalize(digits.train.x)), digits.train.y),
    )
    assert drawing_colors(paper) == ("#000000", "#FFFFFF")
    raw = paper.denormalize(drawn_sample(paper, canvas(255, 0)))[0]  # drawn white on black
    assert raw[0:3, 0:3].max() < 0.1 and raw[3:, 3:].min() > 0.9, raw  # turned dark on light


def test_a_drawing_is_refused_for_a_dataset_that_is_not_images(digits):
    signals = replace(digits, modality="signal", name="waves")
    with pytest.raises(ExplainError, match="not an image dataset"):
        drawn_sample(signals, canvas(255, 0))
