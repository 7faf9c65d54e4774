"""Sweep page, through AppTest: define and start a sweep, watch its trials, use the best."""

from __future__ import annotations

from app import state
from core import runs
from core.sweeps.create import create_sweep
from core.sweeps.params import parse_param
from core.sweeps.status import list_sweeps, sweep_status
from core.worker import run_worker
from tests.pages.conftest import blocks, open_app
from tests.specs import TINY_MLP


def trials_table(at):
    [table] = [d.value for d in at.dataframe if "trial" in d.value.columns]
    return table


def test_a_bad_parameter_is_shown_and_a_good_sweep_starts_from_the_form():
    runs.save_spec(name="tiny", spec=TINY_MLP)
    at = open_app("sweep")
    at.selectbox(key=state.SWEEP_DATASET).set_value("digits")
    at.number_input(key=state.SWEEP_SETTING + "epochs").set_value(1)
    at.text_area(key=state.SWEEP_PARAMS).set_value("lr=0:0.1:log")
    at.button(key=state.SWEEP_START).click().run()
    assert not at.exception, at.exception
    assert any("a log range needs LOW" in e.value and "lr" in e.value for e in at.error)
    assert list_sweeps() == [] and runs.list_runs() == []

    at.text_area(key=state.SWEEP_PARAMS).set_value("lr=1e-3:1e-1:log\nbatch_size=32,64")
    at.number_input(key=state.SWEEP_TRIALS).set_value(3)
    at.button(key=state.SWEEP_START).click().run()
    assert not at.exception, at.exception
    [sweep] = list_sweeps()
    assert sweep.max_trials == 3 and sweep.spec_name == "tiny"
    assert [p["name"] for p in sweep.space] == ["lr", "batch_size"]
    assert any(f"Sweep {sweep.id} started" in s.value for s in at.success)
    table = trials_table(at)
    assert list(table["state"]) == ["queued"]  # no live worker: one trial waits for one


def test_a_finished_sweep_shows_its_trials_and_its_best_opens_in_build_and_train():
    sweep_id = create_sweep(
        spec=TINY_MLP,
        dataset="digits",
        params=[parse_param("lr=0.001,0.02")],
        trials=2,
        sampler="grid",
        pruner="none",
        settings={"epochs": 1, "device": "cpu"},
    )
    run_worker(once=True, poll_s=0.01)
    best = sweep_status(sweep_id)["best"]
    at = open_app("sweep", query_params={state.QP_SWEEP: str(sweep_id)})
    table = trials_table(at)
    assert sorted(table["lr"]) == [0.001, 0.02] and set(table["state"]) == {"completed"}
    shown = [s.value.replace("\\", "") for s in at.success]  # markdown escapes dropped
    assert any(f"Best: trial {best['number']} (run {best['run_id']})" in s for s in shown)
    assert at.tabs  # Optuna's figures, once trials completed

    at.button(key=state.SWEEP_USE_BEST).click().run()
    assert not at.exception, at.exception
    assert [b.type for b in blocks(at)] == ["Flatten", "Linear"]
    kept = at.session_state[state.TRAIN_KEPT]
    assert kept[state.TRAIN_SETTING + "lr"] == best["params"]["lr"]
    assert kept[state.TRAIN_SPEC_SOURCE] == state.FROM_BUILD
    assert kept[state.TRAIN_DATASET] == "digits"


def test_a_finished_run_s_model_is_offered_when_nothing_is_built_or_saved():
    at = open_app("sweep")
    assert any("train one first" in i.value for i in at.info)  # nothing to search yet

    from core.store import db
    from core.store import repository as repo

    run = db.call(
        repo.create_run, spec=TINY_MLP, spec_name="tiny", dataset="digits", settings={},
        status="completed",
    )  # fmt: skip
    db.call(repo.create_run, spec=TINY_MLP, dataset="digits", settings={}, status="failed")
    at = open_app("sweep")
    box = at.selectbox(key=state.SWEEP_SPEC_SOURCE)
    assert box.options == [f"run {run.id}'s model (tiny, trained on digits)"]  # finished only
    at.selectbox(key=state.SWEEP_DATASET).set_value("digits")
    at.text_area(key=state.SWEEP_PARAMS).set_value("lr=1e-3:1e-1:log")
    at.button(key=state.SWEEP_START).click().run()
    assert not at.exception, at.exception
    [sweep] = list_sweeps()
    assert sweep.spec == TINY_MLP and sweep.spec_name == "tiny"
