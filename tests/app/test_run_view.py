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
