"""`studio train | submit | status | metrics | stop | pause | resume | runs` as a user runs them."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys

import pytest

from core.cli.main import build_parser
from core.cli.main import main as studio
from core.cli.setting_flags import add_setting_flags, flag_name, settings_from_args
from core.train.config import TrainConfig
from tests.conftest import REPO
from tests.specs import DIGITS_CNN, TINY_MLP


@pytest.fixture
def spec_file(tmp_path):
    def write(spec: dict, name: str = "spec.json") -> str:
        path = tmp_path / name
        path.write_text(json.dumps(spec))
        return str(path)

    return write


def run_json(capsys, *argv: str) -> object:
    capsys.readouterr()
    assert studio(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_train_json_digits_cnn_beats_90_percent_with_a_progress_bar_on_stderr(spec_file):
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.cli",
            "train",
            spec_file(DIGITS_CNN),
            "--dataset",
            "digits",
            "--epochs",
            "5",
            "--device",
            "cpu",
            "--seed",
            "1",
            "--json",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode == 0, started.stderr
    result = json.loads(started.stdout)  # stdout is the result and nothing else
    assert {"run_id", "status", "epochs", "steps", "duration_s", "samples_per_s"} <= set(result)
    assert set(result["metrics"]) >= {"train_loss", "val_loss", "val_accuracy", "test_accuracy"}
    assert result["status"] == "completed" and result["epochs"] == 5
    assert result["metrics"]["test_accuracy"] > 0.9
    # stderr is a pipe here, not a terminal: plain progress lines, the end written once
    progress = [line for line in started.stderr.splitlines() if line.startswith("training:")]
    assert progress and "\r" not in started.stderr
    assert progress[0].startswith("training:   0%") and "<" in progress[0]  # elapsed<ETA
    assert progress[-1].startswith("training: 100%") and "completed" in progress[-1]
    assert started.stderr.count("100%") == 1
    assert "Traceback" not in started.stderr


def test_submit_status_metrics_and_runs_speak_json(capsys, spec_file):
    spec = spec_file(TINY_MLP)
    submitted = run_json(
        capsys,
        "submit",
        spec,
        "--dataset",
        "digits",
        "--steps",
        "7",
        "--batch-size",
        "32",
        "--optimizer",
        "sgd",
        "--lr",
        "0.1",
        "--momentum",
        "0.8",
        "--weight-decay",
        "0.0001",
        "--scheduler",
        "cosine",
        "--device",
        "cpu",
        "--seed",
        "4",
        "--json",
    )
    assert set(submitted) == {"run_id"}
    run_id = submitted["run_id"]
    status = run_json(capsys, "status", str(run_id), "--json")
    assert {k: status[k] for k in ("run_id", "status", "epoch", "step", "metrics", "error")} == {
        "run_id": run_id,
        "status": "queued",
        "epoch": 0,
        "step": 0,
        "metrics": {},
        "error": None,
    }
    from core import runs

    settings = runs.get_run(run_id).settings
    assert (settings["steps"], settings["epochs"], settings["optimizer"], settings["lr"]) == (
        7,
        None,
        "sgd",
        0.1,
    )
    assert (settings["momentum"], settings["scheduler"], settings["seed"]) == (0.8, "cosine", 4)

    from core.worker import run_worker

    assert run_worker(once=True) == 1
    status = run_json(capsys, "status", str(run_id), "--json")
    assert status["status"] == "completed" and status["step"] == 7
    assert "test_accuracy" in status["metrics"]
    metrics = run_json(capsys, "metrics", str(run_id), "--json")
    assert metrics and all(set(row) == {"name", "step", "epoch", "value"} for row in metrics)
    assert {"train_loss", "val_loss", "test_accuracy"} <= {row["name"] for row in metrics}
    capsys.readouterr()
    assert studio(["metrics", str(run_id), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == len(metrics) and set(rows[0]) == {"name", "step", "epoch", "value"}
    listed = run_json(capsys, "runs", "--json")
    assert [(r["run_id"], r["status"]) for r in listed] == [(run_id, "completed")]
    assert studio(["runs"]) == 0
    assert "completed" in capsys.readouterr().out


def test_steering_a_finished_run_is_a_one_line_error(capsys, spec_file):
    run_id = run_json(
        capsys, "submit", spec_file(TINY_MLP), "--dataset", "digits", "--steps", "2", "--json"
    )["run_id"]
    assert studio(["pause", str(run_id)]) == 0
    assert studio(["resume", str(run_id)]) == 0
    assert studio(["stop", str(run_id)]) == 0
    capsys.readouterr()
    assert studio(["stop", str(run_id)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: run {run_id} is cancelled; only queued, running or paused runs can be stopped\n"
    )
    assert studio(["status", "4242"]) == 1
    assert capsys.readouterr().err.startswith("error: run 4242 does not exist")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "-0.5"], "lr=-0.5 is not allowed"),
        (["--batch-size", "5000"], "larger than the training set"),
        (["--device", "cuda:3"], "cuda:3 is not available"),
    ],
)
def test_bad_options_are_refused_before_anything_is_queued(capsys, spec_file, argv, message):
    assert studio(["submit", spec_file(TINY_MLP), "--dataset", "digits", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert run_json(capsys, "runs", "--json") == []


def test_a_spec_that_fails_the_dataset_is_refused_with_the_builders_message(capsys, spec_file):
    bad = {"layers": [{"type": "Conv1d", "out_channels": 4, "kernel_size": 3}, {"type": "Linear"}]}
    for command in ("submit", "train"):
        assert studio([command, spec_file(bad), "--dataset", "digits", "--json"]) == 1
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("error: ")
        assert "Conv1d" in captured.err and "Traceback" not in captured.err
    assert run_json(capsys, "runs", "--json") == []


def test_epochs_and_steps_are_either_or(spec_file):
    with pytest.raises(SystemExit) as usage:
        studio(
            ["train", spec_file(TINY_MLP), "--dataset", "digits", "--epochs", "1", "--steps", "3"]
        )
    assert usage.value.code == 2


def test_runs_table_stays_aligned_with_long_upload_names(capsys, spec_file, tmp_path):
    table = tmp_path / "a-rather-long-folder-name" / "measurements.csv"
    table.parent.mkdir()
    table.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30)))
    spec = spec_file(TINY_MLP)
    for dataset in (f"csv:{table}", "digits"):
        assert (
            studio(["submit", spec, "--dataset", dataset, "--steps", "1", "--batch-size", "4"]) == 0
        )
    capsys.readouterr()
    assert studio(["runs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert len({line.rindex(" ") for line in lines}) == 1, lines  # SPEC starts in one column


def test_worker_log_shows_the_worker_not_the_migration_set_up():
    finished = subprocess.run(
        [sys.executable, "-m", "core.cli", "worker", "--once"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert "studio.worker INFO worker" in finished.stderr
    assert "alembic" not in finished.stderr, finished.stderr


def test_schedule_options_reach_the_run_settings():
    args = build_parser().parse_args(
        ["train", "spec.json", "--dataset", "digits", "--scheduler", "step", "--step-size", "2",
         "--gamma", "0.5", "--patience", "3", "--betas", "0.8", "0.99", "--nesterov"]
    )  # fmt: skip
    assert settings_from_args(args) == {
        "scheduler": "step",
        "step_size": 2,
        "gamma": 0.5,
        "early_stopping_patience": 3,
        "betas": [0.8, 0.99],
        "nesterov": True,
    }  # only what was given: everything else keeps TrainConfig's defaults


def _flags(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: a for a in parser._actions for option in a.option_strings}


def _subcommand(name: str) -> argparse.ArgumentParser:
    subparsers = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    )
    return subparsers.choices[name]


@pytest.mark.parametrize("command", ["train", "submit"])
@pytest.mark.parametrize("entry", TrainConfig.schema(), ids=lambda e: e["name"])
def test_every_setting_is_a_flag_generated_from_the_schema(command, entry):
    action = _flags(_subcommand(command))[flag_name(entry)]
    assert action.dest == entry["name"] and action.default is None  # unset keeps the default
    assert entry["help"] in action.help
    assert tuple(action.choices or ()) == tuple(entry.get("choices", ()))
    expected_type = {"int": int, "float": float, "float_pair": float, "device": str}
    assert action.type is expected_type.get(entry["kind"])  # None for choices and switches


def test_the_contract_flags_keep_their_names_and_epochs_excludes_steps():
    flags = _flags(_subcommand("train"))
    contract = "--epochs --steps --batch-size --optimizer --lr --momentum --weight-decay "
    contract += "--scheduler --device --seed --json --step-size --gamma --max-lr --nesterov "
    contract += "--loss --label-smoothing --precision --grad-clip --patience --log-every"
    assert set(contract.split()) <= set(flags)
    (length,) = [g for g in _subcommand("train")._mutually_exclusive_groups]
    assert {a.dest for a in length._group_actions} == {"epochs", "steps"}


def test_a_new_setting_in_the_schema_becomes_a_flag_without_touching_the_cli():
    schema = [
        *TrainConfig.schema(),
        {"name": "warmup", "default": "linear", "kind": "choice", "help": "warm-up shape",
         "choices": ("linear", "cosine")},
    ]  # fmt: skip
    parser = argparse.ArgumentParser(prog="studio train")
    add_setting_flags(parser, schema)
    assert "--warmup {linear,cosine}" in parser.format_help()
    assert "warm-up shape (default linear)" in " ".join(parser.format_help().split())
    args = parser.parse_args(["--warmup", "cosine", "--lr", "0.1"])
    assert settings_from_args(args, schema) == {"warmup": "cosine", "lr": 0.1}


def test_help_shows_choices_defaults_and_who_reads_a_setting(capsys):
    with pytest.raises(SystemExit) as shown:
        studio(["train", "--help"])
    assert shown.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--optimizer {sgd,adam,adamw,rmsprop,adagrad} update rule (default adam)" in text
    assert "--scheduler {none,step,cosine,onecycle}" in text and "(default 64)" in text
    assert "used with optimizer sgd or rmsprop (default 0.9 for sgd; 0 for rmsprop)" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--momentum", "0.5"], "momentum=0.5 is not used by optimizer 'adam'; only optimizer "
         "'sgd' or 'rmsprop' use it"),
        (["--optimizer", "sgd", "--betas", "0.8", "0.9"], "only optimizer 'adam' or 'adamw'"),
        (["--optimizer", "adamw", "--nesterov"], "only optimizer 'sgd' use it"),
        (["--gamma", "0.5"], "gamma=0.5 is not used by scheduler 'none'"),
    ],
)  # fmt: skip
def test_a_setting_the_optimizer_would_ignore_is_refused(capsys, spec_file, argv, message):
    assert studio(["submit", spec_file(TINY_MLP), "--dataset", "digits", *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert run_json(capsys, "runs", "--json") == []


@pytest.mark.parametrize("argv", [["--optimizer", "lbfgs"], ["--lr", "fast"], ["--betas", "0.9"]])
def test_a_malformed_flag_is_a_usage_error(spec_file, argv):
    with pytest.raises(SystemExit) as usage:
        studio(["submit", spec_file(TINY_MLP), "--dataset", "digits", *argv])
    assert usage.value.code == 2
