"""`studio check` and `studio code`: tables, JSON, exit codes, one-line errors."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.cli.main import main
from core.templates import TEMPLATES_DIR

REPO = Path(__file__).resolve().parents[2]
LENET = str(TEMPLATES_DIR / "cifar10-tutorial-cnn.json")
BROKEN = {
    "name": "broken",
    "input_shape": [1, 8, 8],
    "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 5, "id": "too_big"},
        {"type": "Flatten"},
        {"type": "Linear"},
    ],
}


def studio(*args: str) -> subprocess.Popen:
    """`studio ARGS` started in its own process (started together, they run side by side)."""
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


@pytest.fixture
def broken_spec(tmp_path) -> str:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(BROKEN))
    return str(path)


def test_check_prints_a_table_with_totals(capsys):
    assert main(["check", LENET]) == 0
    out = capsys.readouterr().out
    assert "cifar10-tutorial-cnn: input (3, 32, 32)" in out
    assert "output shape" in out and "params" in out and "FLOPs" in out
    rows = [line.split() for line in out.splitlines()]
    assert ["3", "conv2", "Conv2d", "(16,", "10,", "10)", "2,416", "480.00K"] in rows
    assert "total" in out and "62,006" in out and out.rstrip().endswith("ok")


def test_check_json_has_the_contract_keys(capsys):
    assert main(["check", LENET, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"ok", "layers", "params", "flops", "error"} <= set(document)
    assert document["ok"] is True and document["params"] == 62_006 and document["error"] is None
    first = document["layers"][0]
    assert {"index", "type", "output_shape", "params", "flops"} <= set(first)
    assert first["output_shape"] == [6, 28, 28] and first["params"] == 456


def test_check_of_a_broken_spec_shows_the_good_layers_then_the_error(broken_spec, capsys):
    assert main(["check", broken_spec]) == 1
    captured = capsys.readouterr()
    assert "(8, 3, 3)" in captured.out and "too_big" in captured.out
    assert captured.err == (
        "error: layer 3 Conv2d (id too_big): its 5x5 kernel does not fit the 3x3 input it "
        "receives; use kernel_size ≤ 3, add padding, or remove a pooling layer before it\n"
    )
    assert main(["check", broken_spec, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and len(document["layers"]) == 3
    assert document["error"].startswith("layer 3 Conv2d (id too_big): its 5x5 kernel")


def test_check_takes_shape_and_classes_from_a_dataset(broken_spec, monkeypatch, capsys):
    import core.data
    from core.facts import ModelFacts

    facts = ModelFacts(input_shape=(1, 12, 12), num_classes=4, modality="image")
    info = SimpleNamespace(facts=facts)
    monkeypatch.setattr(core.data, "describe_dataset", lambda name: info)
    spec = dict(BROKEN, input_shape=None)
    path = Path(broken_spec)
    path.write_text(json.dumps(spec))
    assert main(["check", str(path), "--dataset", "fake", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["layers"][-1]["output_shape"] == [4]
    assert document["input_shape"] == [1, 12, 12]


def test_check_with_a_dataset_refuses_a_model_training_would_refuse(tmp_path, capsys):
    path = tmp_path / "unfinished.json"
    layers = [{"type": "Flatten"}, {"type": "Linear", "out_features": 32}, {"type": "ReLU"}]
    path.write_text(json.dumps({"name": "unfinished", "layers": layers}))
    assert main(["check", str(path), "--dataset", "digits"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: layer 2 ReLU: the model ends with (32,) per sample"), err
    assert main(["check", str(path), "--input-shape", "1,8,8"]) == 0  # no data: still assembling


def test_check_advises_on_a_model_that_builds_but_will_not_learn_as_meant(tmp_path, capsys):
    path = tmp_path / "gru.json"
    layers = [{"type": "GRU", "hidden_size": 8}, {"type": "SequencePool"}, {"type": "Linear"}]
    path.write_text(json.dumps({"layers": layers}))
    assert main(["check", str(path), "--dataset", "mnist1d"]) == 0  # valid, so exit 0
    err = capsys.readouterr().err
    assert "advice: layer 0 GRU: it reads a sequence of length 1" in err, err
    assert "Permute with dims [1, 0]" in err
    assert main(["check", str(path), "--dataset", "mnist1d", "--json"]) == 0
    advice = json.loads(capsys.readouterr().out)["advice"]
    assert [(a["index"], a["type"]) for a in advice] == [(0, "GRU")]


def test_check_explains_missing_shape_and_classes(tmp_path, capsys):
    path = tmp_path / "no-shape.json"
    path.write_text(json.dumps({"layers": [{"type": "Flatten"}, {"type": "Linear"}]}))
    assert main(["check", str(path)]) == 1
    assert "no input_shape and no dataset" in capsys.readouterr().err
    assert main(["check", str(path), "--input-shape", "1,8,8"]) == 1
    assert "pass --dataset NAME or set out_features" in capsys.readouterr().err
    assert main(["check", str(path), "--input-shape", "1x8x8", "--num-classes", "3"]) == 0


@pytest.mark.parametrize(
    "args",
    [
        ["check", LENET, "--dataset", "digits", "--input-shape", "1,8,8"],
        ["check", LENET, "--input-shape", "3,x"],
        ["check"],
        ["code", LENET, "--vocab-size", "0"],
    ],
)
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as caught:
        main(args)
    assert caught.value.code == 2
    assert "usage: studio" in capsys.readouterr().err


def test_code_of_a_bad_file_is_one_line_error(tmp_path, capsys):
    not_json = tmp_path / "not.json"
    not_json.write_text("{ nope")
    assert main(["code", str(not_json)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ")
    assert "not.json: not valid JSON at line 1" in captured.err


def test_code_writes_a_runnable_file(tmp_path, capsys):
    out = tmp_path / "lenet.py"
    assert main(["code", LENET, "-o", str(out)]) == 0
    assert "class Cifar10TutorialCnn(nn.Module):" in out.read_text()
    assert main(["code", LENET]) == 0
    assert capsys.readouterr().out == out.read_text()


def test_subprocess_exit_codes_and_one_line_errors(broken_spec, tmp_path):
    good, bad = studio("check", LENET, "--json"), studio("check", broken_spec)
    code, out, err = finish(good)
    assert code == 0 and json.loads(out)["params"] == 62_006, err
    code, out, err = finish(bad)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: layer 3 Conv2d")
    assert "Traceback" not in out + err


@pytest.mark.parametrize("target", ["missing-folder/model.py", "."])
def test_code_to_a_path_that_cannot_be_written_is_one_line_error(target, tmp_path, capsys):
    output = tmp_path / target
    assert main(["code", LENET, "-o", str(output)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"error: cannot write {output}: ")
    assert "choose a file in a folder that exists" in captured.err


# ---- hostile input: one line, exit 1, never a traceback ----------------------------------------


def one_line_error(capsys, args) -> str:
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    assert "Traceback" not in captured.out + captured.err
    return captured.err


@pytest.mark.parametrize("command", ["check", "code"])
def test_hostile_spec_files_get_one_precise_line(command, tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text('{"layers": ' + "[" * 1000 + "]" * 1000 + "}")
    assert "nested 1,001 levels deep" in one_line_error(capsys, [command, str(deep)])
    assert "/dev/zero: larger than 1,048,576 bytes" in one_line_error(
        capsys, [command, "/dev/zero"]
    )
    assert "cannot be read (Is a directory)" in one_line_error(capsys, [command, str(tmp_path)])
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"input_shape": [12345678901234567890], "layers": BROKEN["layers"]}))
    assert "[1.23e+19] holds more than 2,147,483,647 numbers" in one_line_error(
        capsys, [command, str(huge)]
    )


def test_ids_and_values_with_line_breaks_stay_on_one_line(tmp_path, capsys):
    path = tmp_path / "odd.json"
    layers = [{"type": "ReLU", "id": "0\n1"}, {"type": "Conv2d", "kernel_size": "3\n\ud800"}]
    path.write_text(json.dumps({"input_shape": [4], "layers": layers}))
    err = one_line_error(capsys, ["check", str(path)])
    assert err.startswith("error: layer 1 Conv2d: ")
    path.write_text(
        json.dumps({"input_shape": [4], "layers": [{"type": "ReLU", "id": "a\nb", "x": 1}]})
    )
    assert one_line_error(capsys, ["check", str(path)]).startswith("error: layer 0 ReLU (id a\\nb)")


def test_a_20_digit_input_shape_option_is_one_line(tmp_path, capsys):
    path = tmp_path / "no-shape.json"
    path.write_text(json.dumps({"layers": [{"type": "Flatten"}, {"type": "Linear"}]}))
    for command in ("check", "code"):
        err = one_line_error(capsys, [command, str(path), "--input-shape", "12345678901234567890"])
        assert "the input shape [1.23e+19] holds more than 2,147,483,647 numbers" in err


def test_code_refuses_nothing_and_plants_nothing_for_a_hostile_name(tmp_path, capsys):
    path = tmp_path / "hostile.json"
    name = 'x"""\nimport os\n"""'
    path.write_text(json.dumps({"name": name, "input_shape": [4], "layers": [{"type": "Linear"}]}))
    out = tmp_path / "model.py"
    assert main(["code", str(path), "--num-classes", "2", "-o", str(out)]) == 0
    tree = ast.parse(out.read_text())
    assert not any(
        isinstance(node, ast.Import) and node.names[0].name == "os" for node in tree.body
    )


def test_unexpected_errors_are_one_line_and_logged(monkeypatch, capsys, studio_home):
    import core.spec

    def broken(path):
        raise RuntimeError("something nobody foresaw\nsecond line")

    monkeypatch.setattr(core.spec, "load_spec", broken)
    err = one_line_error(capsys, ["code", LENET])
    log = studio_home / "logs" / "cli-errors.log"
    assert err == (
        "error: unexpected RuntimeError: something nobody foresaw | second line (the full trace "
        f"is in {log}; please report it)\n"
    )
    logged = log.read_text()
    assert "Traceback (most recent call last)" in logged and "def broken" not in logged
    assert "RuntimeError: something nobody foresaw" in logged and "code " in logged
