"""`studio explain` and checkpoints: the cases that used to print a traceback now print one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.cli.main import main
from core.errors import TrainingError
from core.train.checkpoint import load_weights


@pytest.mark.parametrize(
    ("steps", "message"),
    [("0", "0 is out of range; use 1 to 2000"), ("100000000", "100000000 is out of range")],
)
def test_explain_steps_out_of_range_are_usage_errors(steps, message, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["explain", "1", "--method", "integrated_gradients", "--index", "0", "--steps", steps])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --steps: {message}" in err and "Traceback" not in err


def small_model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([torch.zeros(3)], "its model is list, not named weight tensors"),
        ({"0.weight": "not a tensor"}, "its model is a dict of other values"),
        (
            nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2)).state_dict(),
            "another architecture than this run's spec: 3 of another shape, checkpoint vs "
            "model (0.weight (5, 4) vs (3, 4), 0.bias (5,) vs (3,), 2.weight (2, 5) vs (2, 3))",
        ),
        (
            nn.Sequential(nn.Linear(4, 3)).state_dict(),
            "2 weights missing (2.weight, 2.bias)",
        ),
        (
            {**small_model().state_dict(), "extra.weight": torch.zeros(1)},
            "1 weights it does not have (extra.weight)",
        ),
    ],
)
def test_a_checkpoint_that_does_not_fit_says_why_in_one_line(weights, message):
    with pytest.raises(TrainingError) as caught:
        load_weights(small_model(), weights, "run-3/epoch-2.pt")
    text = str(caught.value)
    assert text.startswith("checkpoint run-3/epoch-2.pt ") and message in text
    assert "\n" not in text


def test_weights_that_fit_are_loaded():
    source, target = small_model(), small_model()
    load_weights(target, source.state_dict(), "x.pt")
    assert all(
        torch.equal(a, b) for a, b in zip(source.parameters(), target.parameters(), strict=True)
    )


def test_explain_of_a_checkpoint_of_another_architecture_is_one_line(monkeypatch, capsys):
    import core.runs

    def load_run_model(run_id: int, *, which: str = "latest"):
        load_weights(small_model(), {"0.weight": [1, 2]}, "run-1/epoch-1.pt")

    monkeypatch.setattr(core.runs, "load_run_model", load_run_model)
    assert main(["explain", "1", "--method", "saliency", "--index", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: checkpoint run-1/epoch-1.pt is not")
