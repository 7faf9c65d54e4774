"""`studio compress`: the JSON document of the issue, the table in words, and one-line refusals."""

from __future__ import annotations

import json

from core import runs
from core.cli.main import main
from tests.specs import NARROW_DIGITS_CNN, TINY_MLP

FAST = {"steps": 6, "batch_size": 64, "device": "cpu", "log_every": 3}


def test_compress_json_and_table(capsys):
    parent = runs.train_run_foreground(spec=NARROW_DIGITS_CNN, dataset="digits", config=FAST)
    run_id = parent["run_id"]
    argv = ["compress", str(run_id), "--prune", "0.5", "--samples", "4", "--json"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert {"run_id", "parent_run_id", "before", "after", "attribution_agreement"} <= set(document)
    assert document["parent_run_id"] == run_id and document["run_id"] is None  # no fine-tune
    for key in ("params", "nonzero_params", "flops", "bytes", "latency_ms", "test_accuracy"):
        assert key in document["before"] and key in document["after"]
    assert "pruning (structured)" in captured.err  # progress on stderr, stdout is the JSON
    assert (
        main(["compress", str(run_id), "--prune", "0.3", "--unstructured", "--samples", "4"]) == 0
    )
    table = capsys.readouterr().out
    assert "non-zero parameters" in table and "test accuracy" in table
    assert "relies on the same regions for" in table and "no faster on a CPU" in table


def test_refusals_are_one_line_with_exit_1(capsys):
    assert main(["compress", "1", "--prune", "1.5"]) == 1
    assert "outside (0, 1)" in capsys.readouterr().err
    assert main(["compress", "77", "--prune", "0.5"]) == 1
    assert "run 77" in capsys.readouterr().err
    queued = runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST)
    assert main(["compress", str(queued), "--int8"]) == 1
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["compress", str(queued)]) == 1  # no options, and not made by compression
    assert "not made by compression" in capsys.readouterr().err
    assert (
        main(
            ["compress", str(queued), "--prune", "0.5", "--unstructured", "--finetune-epochs", "2"]
        )
        == 1
    )
    assert "masks" in capsys.readouterr().err
