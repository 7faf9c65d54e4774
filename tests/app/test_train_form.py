"""Values kept for the Train form (from the URL, which anyone can edit) are checked against the
settings schema before they reach a widget."""

from __future__ import annotations

import pytest

from app import state
from app.train_form import form_keys, readable

SETTING = state.TRAIN_SETTING


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        (SETTING + "optimizer", "sgd", True),
        (SETTING + "optimizer", "lbfgs", False),
        (SETTING + "lr", 0.05, True),
        (SETTING + "lr", -1.0, False),
        (SETTING + "epochs", 3, True),
        (SETTING + "epochs", 2.5, False),
        (SETTING + "epochs", True, False),  # a bool is not a number of epochs
        (SETTING + "nesterov", True, True),
        (SETTING + "not_a_setting", 1, False),
        (state.TRAIN_LENGTH, "steps", True),
        (state.TRAIN_LENGTH, "forever", False),
    ],
)
def test_only_values_that_fit_their_widget_are_read_back(key, value, ok):
    assert readable(key, value) is ok


def test_every_setting_of_the_schema_is_kept():
    from core.train.config import TrainConfig

    kept = form_keys()
    assert all(SETTING + field["name"] in kept for field in TrainConfig.schema())
