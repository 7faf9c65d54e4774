"""What the pages say about a run (app.run_view): pure, so tested without Streamlit."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from app import run_view
from core.runs import RunView
from core.states import RunRequest


def a_run(**changes) -> RunView:
    run = RunView(
        id=7,
        status="running",
        spec_name="lenet",
        spec={},
        dataset="digits",
        settings={"batch_size": 32},
        requested_action=None,
        error=None,
        device="cpu",
        worker_id="w",
        created=datetime(2025, 1, 1, tzinfo=UTC),
        started=None,
        finished=None,
        heartbeat=None,
        epoch=2,
        step=100,
        total_steps=400,
        attempts=1,
    )
    return replace(run, **changes)


def test_eta_follows_the_latest_speed_and_only_while_running():
    assert run_view.eta_s(a_run(), 320.0) == 300 * 32 / 320.0
    assert run_view.eta_s(a_run(status="paused"), 320.0) is None
    assert run_view.eta_s(a_run(total_steps=None), 320.0) is None
    text = run_view.progress_text(a_run(), {"samples_per_s": 320.0})
    assert text == "step 100 of 400 · epoch 2 · 320 samples/s · about 30 s left"
    assert run_view.progress_text(a_run(status="queued", total_steps=None), {}) == "step 100"


def test_buttons_follow_the_transition_table():
    offered = run_view.offered_requests(a_run())
    assert offered == {RunRequest.STOP: True, RunRequest.PAUSE: True, RunRequest.RESUME: False}
    asked = run_view.offered_requests(a_run(requested_action="pause"))
    assert asked[RunRequest.RESUME] and not asked[RunRequest.PAUSE]
    done = run_view.offered_requests(a_run(status="completed"))
    assert not any(done.values())


def test_captions_and_rows_use_the_catalog_titles():
    caption = run_view.recorded_caption({"train_loss": 1200, "samples_per_s": 1200})
    assert caption == "Points recorded: train loss 1,200"
    assert run_view.recorded_caption({}) == "No metrics yet."
    finished = a_run(status="completed", result={"metrics": {"test_accuracy": 0.9}})
    row = run_view.runs_table_rows([finished])[0]
    assert (row["status"], row["test accuracy"], row["duration"]) == ("completed", 0.9, "—")
    assert dict(run_view.result_numbers(finished))["Test accuracy"] == "90.00%"


def test_polling_starts_and_stops_with_the_run():
    assert run_view.poll_every(a_run(), 1.0) == 1.0
    assert run_view.poll_every(a_run(status="failed"), 1.0) is None
    assert run_view.activity_changed(True, a_run(status="completed"))
    assert not run_view.activity_changed(None, a_run())  # the first look: nothing changed
    assert run_view.default_compared([a_run(id=3, status="completed"), a_run(id=2)]) == [3]


def test_a_cancelled_run_reads_stopped_everywhere():
    stopped = a_run(status="cancelled")
    assert run_view.status_word(stopped.status) == "stopped"
    assert run_view.status_look(stopped.status)[1] == "stopped"
    assert run_view.runs_table_rows([stopped])[0]["status"] == "stopped"
    assert run_view.run_label(stopped).endswith("· stopped")
    assert run_view.status_word(a_run().status) == "running"


SGD = {"optimizer": "sgd", "lr": 0.05, "scheduler": "cosine", "epochs": 10, "batch_size": 64}
ADAM = {"optimizer": "adam", "lr": 0.001, "scheduler": "none", "epochs": 10, "batch_size": 64}


def test_settings_in_words_in_the_table_and_the_legend():
    run = a_run(id=3, settings=SGD)
    assert run_view.settings_text(run.settings) == "sgd · lr 0.05 · cosine · 10 epochs · batch 64"
    row = run_view.runs_table_rows([run])[0]
    assert (row["optimizer"], row["learning rate"], row["schedule"]) == ("sgd", "0.05", "cosine")
    assert (row["length"], row["batch size"]) == ("10 epochs", "64")
    assert run_view.overlay_name(run) == "run 3 · sgd lr 0.05 · cosine"
    by_steps = run_view.settings_text({**ADAM, "epochs": None, "steps": 400})
    assert by_steps == "adam · lr 0.001 · no schedule · 400 steps · batch 64"


def test_what_differs_between_two_runs():
    first, second = a_run(id=1, settings=ADAM), a_run(id=2, settings=SGD)
    assert run_view.settings_differences(first, second) == [
        "optimizer: adam → sgd",
        "learning rate: 0.001 → 0.05",
        "schedule: no schedule → cosine",
    ]
    other_data = a_run(id=4, settings=ADAM, dataset="mnist1d")
    assert run_view.comparison_sentence(first, other_data) == (
        "Run 1 → run 4: dataset: digits → mnist1d."
    )
    assert "same model, data and settings" in run_view.comparison_sentence(first, first)


def test_a_completed_run_at_chance_is_flagged_and_a_good_one_is_not():
    stuck = a_run(
        status="completed",
        settings=SGD,
        result={
            "metrics": {"train_loss": 2.302, "val_loss": 2.303, "test_accuracy": 0.09},
            "best_val_accuracy": 0.1,
            "confusion_matrix": [[1] * 10 for _ in range(10)],
        },
    )
    verdict = run_view.chance_verdict(stuck, None)  # classes from the confusion matrix
    assert verdict is not None and "ln 10" in verdict.headline
    assert run_view.runs_table_rows([stuck])[0]["note"] == "did not learn: loss at chance"
    # the curve's lowest loss decides when the page has it
    assert run_view.chance_verdict(stuck, 10, [2.3, 0.5, 2.3]) is None
    assert run_view.chance_verdict(replace(stuck, status="running"), 10) is None
    learned = replace(stuck, result={"metrics": {"train_loss": 0.2}, "best_val_accuracy": 0.95})
    assert run_view.chance_verdict(learned, 10) is None
    assert run_view.runs_table_rows([learned])[0]["note"] == ""
