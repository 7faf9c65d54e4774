"""Queuing a sweep's trials survives crashes: an asked trial gets exactly one run, a claim that
was never released expires; and the `studio sweep` / `sweep-status` contract."""

from __future__ import annotations

import json
from datetime import timedelta

from core import runs
from core.cli.main import main as studio
from core.states import RunStatus, SweepStatus
from core.store import db
from core.store import sweeps as store
from core.store.models import utcnow
from core.sweeps import study as studies
from core.sweeps.create import create_sweep
from core.sweeps.params import Param, parse_param
from core.sweeps.queue import advance
from core.sweeps.status import get_sweep
from core.worker import run_worker
from tests.core.store.test_db import LATEST
from tests.specs import TINY_MLP

SETTINGS = {"epochs": 1, "batch_size": 64, "device": "cpu"}


def test_a_trial_asked_by_a_process_that_died_before_writing_its_run_gets_one_run(backend):
    # on SQLite and PostgreSQL: Optuna's tables live beside the studio's, in the same database
    sweep_id = create_sweep(
        spec=TINY_MLP,
        dataset="digits",
        params=[parse_param("lr=1e-4:1e-1:log")],
        trials=3,
        settings=SETTINGS,
    )
    assert len(db.call(store.trials_with_runs, sweep_id=sweep_id)) == 1  # no live worker: one
    sweep = get_sweep(sweep_id)
    space = {p["name"]: Param.from_dict(p).distribution() for p in sweep.space}
    orphan = studies.load(sweep).ask(space)  # ... and the asking process dies here
    for _ in range(2):  # the next advance writes its run; the one after changes nothing
        advance(sweep_id, owner="another-worker")
        pairs = db.call(store.trials_with_runs, sweep_id=sweep_id)
        assert [trial.number for trial, _ in pairs] == [0, 1]
    trial, run = pairs[1]
    assert trial.params == orphan.params and run.settings["lr"] == orphan.params["lr"]
    assert len(studies.load(sweep).get_trials()) == 2  # counted once
    assert db.current_revision() == LATEST  # Optuna left the studio's schema version alone


def test_a_sweep_s_claim_excludes_others_until_released_or_expired():
    sweep_id = create_sweep(
        spec=TINY_MLP, dataset="digits", params=[parse_param("lr=0.001,0.01")], trials=2
    )
    soon = utcnow() + timedelta(seconds=60)
    assert db.call(store.claim_sweep, sweep_id=sweep_id, owner="a", until=soon)
    assert not db.call(store.claim_sweep, sweep_id=sweep_id, owner="b", until=soon)
    assert advance(sweep_id, owner="b") == 0  # held by a: b queues nothing
    past = utcnow() - timedelta(seconds=1)
    assert db.call(store.claim_sweep, sweep_id=sweep_id, owner="a", until=past)  # a dies
    assert db.call(store.claim_sweep, sweep_id=sweep_id, owner="b", until=soon)
    db.call(store.release_sweep, sweep_id=sweep_id, owner="b")
    assert db.call(store.claim_sweep, sweep_id=sweep_id, owner="c", until=soon)


def test_studio_sweep_and_sweep_status_json(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(TINY_MLP))
    common = [str(spec), "--dataset", "digits", "--epochs", "1", "--device", "cpu"]

    assert studio(["sweep", *common, "--trials", "2", "--param", "lr=-1:1", "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: parameter lr=-1") and err.count("\n") == 1
    assert runs.list_runs() == []

    argv = ["sweep", *common, "--trials", "2", "--param", "lr=0.001,0.01", "--sampler", "grid"]
    assert studio([*argv, "--pruner", "none", "--json"]) == 0
    sweep_id = json.loads(capsys.readouterr().out)["sweep_id"]
    assert run_worker(once=True, poll_s=0.01) == 2  # the idle worker queues the second trial

    assert studio(["sweep-status", str(sweep_id), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert {"sweep_id", "status", "trials", "best"} <= set(status)
    assert status["status"] == SweepStatus.COMPLETED
    assert sorted(t["params"]["lr"] for t in status["trials"]) == [0.001, 0.01]  # the grid
    for trial in status["trials"]:
        assert {"number", "run_id", "params", "value", "state"} <= set(trial)
        assert trial["state"] == RunStatus.COMPLETED and 0 < trial["value"] <= 1
    best = max(status["trials"], key=lambda t: t["value"])
    assert status["best"] == {
        "number": best["number"],
        "run_id": best["run_id"],
        "params": best["params"],
        "value": best["value"],
    }
    assert studio(["sweep-status", str(sweep_id)]) == 0
    assert f"best: trial {best['number']} (run {best['run_id']})" in capsys.readouterr().out
