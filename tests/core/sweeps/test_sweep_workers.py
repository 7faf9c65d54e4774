"""A small sweep on digits trained by two real `studio worker` subprocesses.

Every trial is an ordinary run trained exactly once; a hopeless trial is pruned after its first
epoch, with its curves kept; the best trial's settings give its value again when re-run with the
same seed. The Optuna study lives in the same SQLite file as the studio, whose schema version
it leaves alone."""

from __future__ import annotations

import re

import optuna
import pytest

from core import runs
from core.states import RunStatus, SweepStatus
from core.store import db
from core.store import repository as repo
from core.sweeps import study as studies
from core.sweeps.create import create_sweep
from core.sweeps.params import parse_param
from core.sweeps.status import get_sweep, sweep_status
from tests.core.store.test_db import LATEST
from tests.polling import wait_for
from tests.specs import TINY_MLP
from tests.worker_process import spawn_worker

SETTINGS = {"epochs": 2, "batch_size": 64, "device": "cpu", "seed": 5}
GOOD = {"lr": 0.01, "optimizer": "adam"}
HOPELESS = {"lr": 1e-6, "optimizer": "sgd"}  # learns nothing: pruned after its first epoch


@pytest.fixture
def two_workers(tmp_path):
    # no recovery wanted here: a busy machine must not make a slow heartbeat look dead
    slow_beats = {"STUDIO_HEARTBEAT_S": "0.5", "STUDIO_STALE_AFTER_S": "120"}
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    processes = [spawn_worker(log, env=slow_beats) for log in logs]
    wait_for(lambda: len(runs.list_workers()) == 2, timeout=120, what="two live workers")
    yield logs
    for process in processes:
        process.kill()
        process.wait()


@pytest.mark.slow
def test_two_workers_run_a_sweep_each_trial_once_pruning_the_hopeless_one(two_workers):
    sweep_id = create_sweep(
        spec=TINY_MLP,
        dataset="digits",
        params=[parse_param("lr=1e-6:0.05:log"), parse_param("optimizer=adam,sgd")],
        trials=4,
        settings=SETTINGS,
        pruner="median",
        first_trials=[GOOD, {**GOOD, "lr": 0.02}, HOPELESS],
    )
    logs = "\n".join(log.read_text() for log in two_workers)
    wait_for(
        lambda: sweep_status(sweep_id)["status"] != SweepStatus.RUNNING,
        timeout=240,
        what=f"the sweep to end; worker logs:\n{logs}",
    )
    status = sweep_status(sweep_id)
    assert status["status"] == SweepStatus.COMPLETED
    trials = status["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2, 3]

    # every trial is an ordinary run, tagged with its sweep, trained exactly once
    trained = re.findall(r"training run (\d+)", "".join(log.read_text() for log in two_workers))
    assert sorted(map(int, trained)) == sorted(t["run_id"] for t in trials)
    for trial in trials:
        run = runs.get_run(trial["run_id"])
        assert run.attempts == 1 and run.status in (RunStatus.COMPLETED, RunStatus.PRUNED)
        assert run.origin == {
            "kind": "sweep",
            "sweep_id": sweep_id,
            "trial": trial["number"],
            "params": trial["params"],
        }
        assert run.settings["lr"] == trial["params"]["lr"]
        assert db.call(repo.metric_duplicates, run_id=run.id) == 0

    # the hopeless trial (queued once a good one had finished) is pruned after its first epoch
    hopeless = trials[2]
    assert hopeless["params"] == HOPELESS and hopeless["state"] == RunStatus.PRUNED
    run = runs.get_run(hopeless["run_id"])
    assert run.step < run.total_steps and run.epoch == 1
    assert [m.epoch for m in runs.metrics_since(run.id, names=["val_accuracy"])] == [1]
    assert runs.list_checkpoints(run.id)  # the model trained so far stays loadable

    # the study agrees, each trial counted once; the studio's schema version is its own
    study = studies.load(get_sweep(sweep_id))
    states = {t.number: t.state for t in study.get_trials()}
    expected = {
        RunStatus.COMPLETED: optuna.trial.TrialState.COMPLETE,
        RunStatus.PRUNED: optuna.trial.TrialState.PRUNED,
    }
    assert states == {t["number"]: expected[t["state"]] for t in trials}
    assert db.current_revision() == LATEST

    # the best trial's parameters give its value again, same seed, trained in the foreground
    best = status["best"]
    assert best["value"] == max(t["value"] for t in trials if t["state"] == RunStatus.COMPLETED)
    original = runs.get_run(best["run_id"])
    again = runs.train_run_foreground(
        spec=original.spec, dataset="digits", config=original.settings
    )
    values = [m.value for m in runs.metrics_since(again["run_id"], names=["val_accuracy"])]
    assert max(values) == best["value"]
