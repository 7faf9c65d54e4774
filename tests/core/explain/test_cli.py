"""`studio explain RUN_ID --method ... --index I [--json]`."""

from __future__ import annotations

import json

import pytest

import core.runs
from core.cli.main import main
from core.errors import NotFoundError


@pytest.fixture
def a_run(monkeypatch, trained_cnn, digits):
    """Run 7 is the trained digits CNN (the runs service is exercised by its own tests)."""

    def load_run_model(run_id: int, *, which: str = "latest"):
        if run_id != 7:
            raise NotFoundError(f"run {run_id} does not exist")
        return trained_cnn, digits, object()

    monkeypatch.setattr(core.runs, "load_run_model", load_run_model)


def test_json_document(a_run, capsys, digits):
    code = main(["explain", "7", "--method", "integrated_gradients", "--index", "3", "--json"])
    out = capsys.readouterr().out
    assert code == 0
    document = json.loads(out)
    assert {
        "prediction",
        "probabilities",
        "method",
        "attribution",
        "convergence_delta",
        "summary",
    } <= set(document)
    assert document["method"] == "integrated_gradients"
    assert isinstance(document["convergence_delta"], float)
    assert len(document["attribution"]) == 1 and len(document["attribution"][0]) == 8
    assert document["label"] == digits.class_names[int(digits.test.y[3])]
    assert document["probabilities"][0]["label"] == document["prediction"]


def test_readable_report_with_an_ascii_picture(a_run, capsys):
    assert main(["explain", "7", "--method", "grad_cam", "--index", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The model")
    assert "top 3:" in out
    assert "relied on (darker = more)" in out
    assert "convergence delta" not in out


def test_index_out_of_range_is_one_line_and_exit_1(a_run, capsys, digits):
    code = main(["explain", "7", "--method", "saliency", "--index", "5000"])
    captured = capsys.readouterr()
    size = len(digits.test)
    assert code == 1
    assert captured.err.strip() == (
        f"error: index 5000 is out of range; the test split has {size} samples (0–{size - 1})"
    )
    assert captured.out == ""


def test_unknown_run_is_one_line_and_exit_1(a_run, capsys):
    assert main(["explain", "99", "--method", "saliency", "--index", "0"]) == 1
    assert capsys.readouterr().err.startswith("error: run 99 does not exist")


def test_unknown_method_is_a_usage_error(a_run):
    with pytest.raises(SystemExit) as exit_:
        main(["explain", "7", "--method", "lime", "--index", "0"])
    assert exit_.value.code == 2


def test_a_real_trained_run_end_to_end(capsys):
    from core.templates import get_template

    result = core.runs.train_run_foreground(
        spec=get_template("digits-cnn").spec, dataset="digits", config={"epochs": 1, "seed": 0}
    )
    run_id = str(result["run_id"])
    assert main(["explain", run_id, "--method", "occlusion", "--index", "0", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["attribution"][0]) == 8
    assert document["summary"].startswith("The model")
    assert main(["explain", run_id, "--method", "saliency", "--index", "359"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: index 359 is out of range; the test split has 359 samples (0–358)"
    )
