"""Plain-language pieces: regions in words, honest percentages, the confidence sentence."""

from __future__ import annotations

import torch

from core.explain.summary import (
    RegionEffect,
    build_summary,
    change_text,
    confidence_sentence,
    describe_image_region,
    describe_items,
    describe_steps,
    effect_sentence,
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


def an_effect(before: float, after: float, prediction_after: int = 7) -> RegionEffect:
    return RegionEffect(
        mask=torch.ones(2, dtype=torch.bool),
        words="the centre of the image",
        probability_before=before,
        probability_after=after,
        prediction_before=7,
        prediction_after=prediction_after,
        random_probability_after=before,
    )


def test_sentences_speak_of_the_model_never_of_the_method():
    for effect in (an_effect(0.93, 0.30), an_effect(0.93, 0.91)):
        summary = build_summary(
            label="7",
            probability=0.93,
            runner_up=("1", 0.05),
            true_label=None,
            effect=effect,
            method_title="Integrated Gradients",
            class_names=[str(i) for i in range(10)],
            warnings=[],
        )
        assert "Integrated Gradients" not in summary and "points most at" not in summary


def test_a_change_too_small_to_read_is_said_in_words_not_as_an_arrow():
    sure = effect_sentence(an_effect(0.9991, 0.992))  # "over 99% → 99%" said nothing
    assert "→" not in sure and "over 99%" not in sure.split("stays")[0]
    assert "it stays 99%" in sure and "barely matters" in sure
    assert change_text(0.93, 0.90) == "from 93% to 90%"
    assert change_text(0.9991, 0.9999) == "it stays over 99%"
    relied = effect_sentence(
        an_effect(0.93, 0.30, prediction_after=1), class_names=list("0123456789")
    )
    assert relied == (
        "It relied most on the centre of the image: hiding that region lowers its confidence "
        "to 30% (it would then say 1)."
    )
