"""`studio export`: a real finished run through the CLI and `export_run`; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core import runs
from core.builder import build_model, trace
from core.cli.main import main
from core.errors import ExportError
from core.export import FORMATS, TOLERANCE, export_run
from core.export.bundle import STANDALONE
from core.export.onnx import onnx_session, run_session
from core.serve.contract import build_contract
from tests.specs import TINY_MLP

FAST = {"epochs": 1, "batch_size": 256, "device": "cpu", "seed": 0}
PNG = b"\x89PNG\r\n\x1a\n"


def test_a_finished_run_exports_as_bundle_and_pt2(capsys, tmp_path: Path) -> None:
    run_id = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=FAST)["run_id"]
    model, dataset, run = runs.load_run_model(run_id)
    folder = tmp_path / "shipped"

    assert main(["export", str(run_id), "--format", "bundle", "-o", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)  # stdout is the result alone
    assert set(document) >= {"run_id", "format", "path", "bytes", "max_abs_diff"}
    assert document["run_id"] == run_id and document["format"] == "bundle"
    assert Path(document["path"]) == folder
    assert 0 <= document["max_abs_diff"] < TOLERANCE
    assert "export bundle" in captured.err and "writing the model card" in captured.err
    files = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert document["bytes"] == sum((folder / f).stat().st_size for f in files)
    assert {"model.onnx", "model.safetensors", "spec.json", "contract.json", "README.md"} <= files
    assert not list(tmp_path.glob(".*partial*"))  # the staging folder was renamed, not left

    # serve.py is the standalone server itself; contract.json is SERVE's contract of the run
    assert (folder / "serve.py").read_bytes() == STANDALONE.read_bytes()
    assert json.loads((folder / "contract.json").read_text()) == json.loads(
        json.dumps(build_contract(run_id))
    )
    # the weights rebuild the same model from spec.json alone; the ONNX file answers as it does
    rebuilt = build_model(json.loads((folder / "spec.json").read_text()), dataset.facts).eval()
    rebuilt.load_state_dict(load_file(str(folder / "model.safetensors")))
    x = dataset.test.x[:16]
    with torch.no_grad():
        expected = model(x).numpy()
        assert torch.equal(rebuilt(x), model(x))
    answered = run_session(onnx_session(folder / "model.onnx"), x)
    np.testing.assert_allclose(answered, expected, atol=TOLERANCE, rtol=0)

    card = (folder / "README.md").read_text()
    traced = trace(run.spec, dataset.facts, finished=True)
    assert f"**{traced.params:,}**" in card and f"**{traced.flops:,}**" in card
    assert f"{run.result['metrics']['test_accuracy']:.4g}" in card
    assert "1,294 train, 144 validation, 359 test" in card
    pictures = [
        line.split("](")[1].rstrip(")") for line in card.splitlines() if line.startswith("![")
    ]
    assert "figures/confusion_matrix.png" in pictures and len(pictures) == 4  # + 3 examples
    for picture in pictures:
        assert (folder / picture).read_bytes().startswith(PNG)
    sentences = [line[2:] for line in card.splitlines() if line.startswith("> ")]
    assert len(sentences) == 3 and all(s.startswith("The model") for s in sentences)

    # an existing path is never overwritten
    assert main(["export", str(run_id), "--format", "onnx", "-o", str(folder)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {folder} already exists; give a new path with -o, or delete it first"
    )

    # pt2 to the default path, with progress reported step by step up to done == total
    steps: list[tuple[int, int, str]] = []
    result = export_run(run_id, "pt2", progress=lambda *step: steps.append(step))
    assert result.path.name == "model.pt2" and result.path.parent.name == f"run-{run_id}"
    assert result.bytes == result.path.stat().st_size and result.max_abs_diff < TOLERANCE
    loaded = torch.export.load(str(result.path)).module()
    np.testing.assert_allclose(loaded(x).detach().numpy(), expected, atol=TOLERANCE, rtol=0)
    assert [done for done, _, _ in steps] == list(range(len(steps)))
    assert steps[-1][0] == steps[-1][1] and steps[-1][2] == "done"


def test_unknown_run_is_one_line(capsys) -> None:
    assert main(["export", "42", "--format", "onnx"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: run 42 does not exist; `studio runs` lists the runs there are"
    )


def test_unfinished_and_checkpointless_runs_are_refused(capsys) -> None:
    queued = runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST)
    assert main(["export", str(queued), "--format", "bundle"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: run {queued} is still queued; export it once it has finished")
    assert "\n" not in err

    runs.request_stop(queued)  # a queued run stopped before it trained: no checkpoint
    assert main(["export", str(queued), "--format", "onnx", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (
        f"error: run {queued} (cancelled) has no checkpoint to export: it ended before its "
        "first epoch end; train it again for at least one epoch"
    )


def test_unknown_format_is_a_usage_error_and_an_export_error() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["export", "1", "--format", "torchscript"])
    assert exit_.value.code == 2
    with pytest.raises(ExportError, match="unknown export format 'torchscript'; choose one of"):
        export_run(1, "torchscript")
    assert FORMATS == ("onnx", "pt2", "bundle")
