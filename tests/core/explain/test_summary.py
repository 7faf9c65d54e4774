"""Plain-language pieces: regions in words, honest percentages, the confidence sentence."""

from __future__ import annotations

import torch

from core.explain.summary import (
    confidence_sentence,
    describe_image_region,
    describe_items,
    describe_steps,
    percent,
    top_mask,
)


def region(rows: slice, cols: slice) -> str:
    mask = torch.zeros(9, 9, dtype=torch.bool)
    mask[rows, cols] = True
    return describe_image_region(mask, torch.ones(9, 9))


def test_image_regions_are_named_from_the_centre_of_mass():
    assert region(slice(0, 2), slice(3, 6)) == "the top of the image"
    assert region(slice(7, 9), slice(0, 2)) == "the bottom-left corner"
    assert region(slice(3, 6), slice(3, 6)) == "the centre of the image"
    assert region(slice(3, 6), slice(7, 9)) == "the right side of the image"


def test_time_ranges_and_items():
    mask = torch.zeros(40, dtype=torch.bool)
    mask[12:16] = True
    assert describe_steps(mask, torch.ones(40)) == "time steps 12–15 (of 40)"
    words = torch.tensor([False, True, False, True])
    scores = torch.tensor([0.0, 1.0, 0.0, 2.0])
    assert describe_items(words, scores, ["a", "great", "b", "fun"], "word") == (
        'the words "fun" and "great"'
    )


def test_top_mask_takes_a_tenth_and_respects_valid_positions():
    scores = torch.arange(20.0)
    assert top_mask(scores).nonzero().flatten().tolist() == [18, 19]
    valid = torch.arange(20) < 10
    assert top_mask(scores, valid=valid).nonzero().flatten().tolist() == [9]


def test_percentages_never_round_to_certainty():
    assert percent(0.93) == "93%"
    assert percent(0.9999) == "over 99%"
    assert percent(0.001) == "under 1%"


def test_confidence_sentence():
    assert confidence_sentence("7", 0.93, ("1", 0.05), None) == "The model is 93% sure this is 7."
    unsure = confidence_sentence("7", 0.41, ("1", 0.30), "1")
    assert unsure == (
        "The model's best guess is 7, but it is only 41% sure (next: 1 at 30%); it is actually 1."
    )
