"""The pages' live path (app.live) against a real SQLite store: one cache, one rule, bounded."""

from __future__ import annotations

import numpy as np
import pytest

from app import live, series
from core import runs
from core.store import db
from core.store import repository as repo


class Record:
    def __init__(self, name: str, step: int, value: float, epoch: int = 1) -> None:
        self.name, self.step, self.epoch, self.value = name, step, epoch, value


@pytest.fixture(autouse=True)
def cold_cache():
    live.forget_cache()
    yield
    live.forget_cache()


def running_run() -> int:
    run = db.call(
        repo.create_run,
        spec={"layers": [{"type": "Flatten"}, {"type": "Linear"}]},
        dataset="digits",
        settings={},
        status="running",
        worker_id="test-worker",
    )
    return run.id


def noisy(steps, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed + len(steps))
    return [float(v) for v in np.round(rng.random(len(steps)), 2)]


def record(run_id: int, steps, name: str = "train_loss", values=None) -> None:
    steps = list(steps)
    values = values if values is not None else [1.0 / step for step in steps]
    rows = [
        Record(name, step, value, 1 + step // 100)
        for step, value in zip(steps, values, strict=True)
    ]
    db.call(repo.record_metrics, run_id=run_id, worker_id="test-worker", records=rows)


def drawn(curves: series.LiveCurves) -> dict:
    return {
        name: (c.steps.tolist(), c.epochs.tolist(), c.values.tolist())
        for name, c in curves.curves.items()
    }


def test_reads_only_new_rows_and_never_draws_a_step_twice():
    run_id = running_run()
    record(run_id, range(1, 11))
    curves = live.read_curves(runs.get_run(run_id))
    assert list(curves.curves["train_loss"].steps) == list(range(1, 11))
    record(run_id, range(11, 16))
    curves = live.read_curves(runs.get_run(run_id))
    steps = curves.curves["train_loss"].steps
    assert list(steps) == list(range(1, 16)) and curves.recorded["train_loss"] == 15


@pytest.mark.parametrize("chunk", [7, 250, 5000])
def test_a_first_read_and_reads_poll_by_poll_draw_the_same_points(chunk):
    """The same rows, read once whole by a fresh server or merged as they arrive."""
    total = 3_000 if chunk < 100 else 12_000  # 5x the points drawn; 430 polls, not 1,700
    polled = running_run()
    for start in range(1, total + 1, chunk):
        steps = range(start, min(start + chunk, total + 1))
        record(polled, steps, values=noisy(steps))
        record(polled, steps, name="lr", values=[1e-3] * len(steps))  # ties everywhere
        if start % 1000 < chunk:
            record(polled, [start], name="val_loss", values=noisy([start], 1))
        poll_by_poll = live.read_curves(runs.get_run(polled))
    live.forget_cache()
    first_read = live.read_curves(runs.get_run(polled))
    assert first_read is not poll_by_poll
    assert drawn(first_read) == drawn(poll_by_poll)
    assert first_read.recorded == poll_by_poll.recorded == {
        "train_loss": total, "lr": total, "val_loss": len(first_read.curves["val_loss"]),
    }  # fmt: skip
    assert len(first_read.curves["train_loss"]) <= series.MAX_POINTS


def test_a_long_run_is_drawn_from_a_bounded_number_of_points():
    run_id = running_run()
    record(run_id, range(1, 20_001))
    record(run_id, range(1, 20_001), name="lr")
    curves = live.read_curves(runs.get_run(run_id))
    assert curves.recorded["train_loss"] == 20_000
    figure = live.curves_figure(curves)
    counts = {trace.name: len(trace.x) for trace in figure.data}
    assert 0 < counts["train loss"] <= series.MAX_POINTS
    assert counts["learning rate"] <= series.MAX_POINTS


def test_every_session_shares_the_servers_one_copy():
    run_id = running_run()
    record(run_id, range(1, 301))
    first = live.read_curves(runs.get_run(run_id))
    record(run_id, range(301, 311))
    second_tab = live.read_curves(runs.get_run(run_id))
    assert list(second_tab.curves["train_loss"].steps) == list(range(1, 311))
    assert len(first.curves["train_loss"]) == 300  # what a session was handed never changes
    with pytest.raises(ValueError):
        second_tab.curves["train_loss"].values[0] = 0.0


def test_a_new_attempt_starts_the_curves_over():
    run_id = running_run()
    record(run_id, range(1, 6))
    curves = live.read_curves(runs.get_run(run_id))
    assert curves.attempts == runs.get_run(run_id).attempts
    db.call(repo.rewind_run, run_id=run_id, step=2, epoch=1)
    db.call(
        repo.transition_run,
        run_id=run_id,
        from_statuses=("running",),
        values={"attempts": curves.attempts + 1},
    )
    again = live.read_curves(runs.get_run(run_id))
    assert again is not curves and list(again.curves["train_loss"].steps) == [1, 2]


def test_the_runs_page_overlays_the_same_curves():
    run_id = running_run()
    record(run_id, range(1, 2001), values=noisy(range(1, 2001)))
    run = runs.get_run(run_id)
    overlay = live.compared_curves(run)
    curve = live.read_curves(run).curves["train_loss"]
    assert overlay["train_loss"][0].tolist() == curve.steps.tolist()
