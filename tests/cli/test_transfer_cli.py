"""`studio train | submit --init-from RUN_ID`: the plan on stderr before training, "init" in
train --json, the parent recorded; a missing run is a one-line error."""

from __future__ import annotations

import json

from core import runs
from core.cli.main import main as studio
from tests.specs import TINY_MLP


def test_init_from_prints_the_plan_and_train_json_reports_it(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(TINY_MLP))
    base = [str(spec), "--dataset", "digits", "--epochs", "1", "--device", "cpu", "--json"]
    assert studio(["train", *base]) == 0
    parent = json.loads(capsys.readouterr().out)["run_id"]
    assert studio(["train", *base, "--init-from", str(parent)]) == 0
    captured = capsys.readouterr()
    assert f"initial weights from run {parent}: 1 block loaded" in captured.err
    result = json.loads(captured.out)
    assert result["init"] == {"from_run": parent, "loaded": ["fc1"], "new": [], "skipped": []}
    assert runs.get_run(result["run_id"]).parent_run_id == parent
    assert studio(["submit", *base, "--init-from", str(parent)]) == 0
    queued = json.loads(capsys.readouterr().out)["run_id"]
    assert runs.get_run(queued).origin["init"] == {"from_run": parent}
    assert studio(["train", *base, "--init-from", "99"]) == 1
    assert "run 99" in capsys.readouterr().err
