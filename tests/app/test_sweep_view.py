"""What the Sweep page shows, without Streamlit: parameter lines, searchable names, the table,
the best-so-far figure and the Train values of the best trial."""

from __future__ import annotations

import pytest

from app import state, sweep_view
from core.errors import SettingsError
from core.sweeps.status import TrialView
from tests.specs import DIGITS_CNN


def trial(number, state_, value, **params):
    return TrialView(number, number + 10, params, value, state_, 30, None)


def test_parameter_lines_skip_blanks_and_comments_and_name_a_bad_line():
    assert sweep_view.param_lines("# search\nlr=0.001:0.1:log\n\nbatch_size=32,64\n") == [
        {"name": "lr", "low": 0.001, "high": 0.1, "log": True},
        {"name": "batch_size", "choices": [32, 64]},
    ]
    with pytest.raises(SettingsError, match="'lr'"):
        sweep_view.param_lines("lr")


def test_searchable_names_cover_settings_and_each_block_argument():
    names = dict(sweep_view.searchable(DIGITS_CNN))
    assert {"lr", "batch_size", "optimizer", "weight_decay"} <= set(names)
    assert "device" not in names and "dropout" not in names  # no Dropout block here
    assert names["block.0.out_channels"].startswith("Conv2d: a whole number")
    assert "block.4.out_features" in names and not any(n.startswith("block.1.") for n in names)


def test_the_table_and_the_best_so_far_curve():
    trials = [
        trial(0, "completed", 0.8, lr=0.01),
        trial(1, "pruned", 0.3, lr=1e-5),
        trial(2, "completed", 0.9, lr=0.02),
        trial(3, "running", None, lr=0.05),
    ]
    rows = sweep_view.trial_rows(trials, "val_accuracy")
    assert rows[1] == {
        "trial": 1,
        "run": 11,
        "state": "pruned",
        "validation accuracy": 0.3,
        "steps": 30,
        "lr": 1e-5,
    }
    figure = sweep_view.best_so_far_figure(trials, [(0, 0.8), (2, 0.9)], "val_accuracy")
    completed, pruned, best = figure.data
    assert list(completed.x) == [0, 2] and list(pruned.x) == [1]
    assert list(best.y) == [0.8, 0.9]


def test_the_best_trial_s_settings_become_the_train_form_s_values():
    kept = sweep_view.train_form_values(
        "digits", {"epochs": 3, "steps": None, "lr": 0.02, "betas": [0.9, 0.99], "momentum": None}
    )
    assert kept == {
        state.TRAIN_SPEC_SOURCE: state.FROM_BUILD,
        state.TRAIN_DATASET: "digits",
        state.TRAIN_LENGTH: "epochs",
        state.TRAIN_SETTING + "epochs": 3,
        state.TRAIN_SETTING + "lr": 0.02,
        state.TRAIN_SETTING + "betas": "0.9, 0.99",
    }
