"""The per-class maps point where the class really comes from (a known region or column)."""

from __future__ import annotations

import numpy as np

from core.report import class_profiles
from core.report.words import looks_for
from tests.core.report.conftest import BLOCK, STEPS


def region_stands_out(scores: np.ndarray, region: np.ndarray) -> float:
    """How many times more attribution per position the region gets than the rest."""
    strength = np.abs(scores)
    return float(strength[region].mean() / max(strength[~region].mean(), 1e-12))


def strongest_in_region(scores: np.ndarray, region: np.ndarray) -> int:
    """How many of the region-sized set of strongest positions lie in the region."""
    strongest = np.argsort(-np.abs(scores).ravel())[: int(region.sum())]
    return int(region.ravel()[strongest].sum())


def test_image_maps_light_up_the_block_that_decides_the_class(image_run):
    profiles = class_profiles(image_run.model, image_run.dataset)
    region = np.zeros((8, 8), dtype=bool)
    region[BLOCK] = True
    assert [p.name for p in profiles.classes] == ["bright", "dim"]
    for profile in profiles.classes:
        assert profile.count > 0
        assert profile.scores.shape == (8, 8)
        assert profile.average_input.shape == (8, 8, 1)  # the picture the heatmap sits on
        assert strongest_in_region(profile.scores, region) >= 8, profile.name  # of 9
        assert region_stands_out(profile.scores, region) > 2, profile.name
    bright = profiles.classes[0]
    assert "the top-left corner" in looks_for(image_run.dataset, bright, regression=False)


def test_signal_maps_light_up_the_steps_that_decide_the_class(signal_run):
    profiles = class_profiles(signal_run.model, signal_run.dataset)
    region = np.zeros(20, dtype=bool)
    region[STEPS] = True
    for profile in profiles.classes:
        assert profile.scores.shape == (20,)
        assert strongest_in_region(profile.scores, region) == 4, profile.name
        assert region_stands_out(profile.scores, region) > 3, profile.name


def test_table_columns_put_the_deciding_column_first_with_its_direction(table_run):
    profiles = class_profiles(table_run.model, table_run.dataset)
    by_class = {p.name: p for p in profiles.classes}
    for name, direction in (("yes", 1), ("no", -1)):
        columns = by_class[name].columns
        assert columns[0].name == "key"
        assert columns[0].weight > 3 * columns[1].weight
        assert columns[0].direction == direction  # higher key -> yes, lower key -> no
    sentence = looks_for(table_run.dataset, by_class["yes"], regression=False)
    assert "higher “key” pushes towards “yes”" in sentence


def test_regression_says_which_column_pushes_the_value_up(regression_run):
    profiles = class_profiles(regression_run.model, regression_run.dataset)
    (value,) = profiles.classes
    assert value.name == "price"
    assert value.columns[0].name == "key" and value.columns[0].direction == 1
    assert value.columns[0].weight > 3 * value.columns[1].weight
    assert "higher “key” pushes price up" in looks_for(
        regression_run.dataset, value, regression=True
    )


def test_text_lists_the_words_that_decide_each_class(text_run):
    profiles = class_profiles(text_run.model, text_run.dataset)
    good, bad = profiles.classes
    assert {w.word for w in good.words[:2]} == {"great", "love"}
    assert {w.word for w in bad.words[:2]} == {"awful", "hate"}
