"""The Train page's live path (app.live) against a real SQLite store: incremental, bounded."""

from __future__ import annotations

import numpy as np

from app import live, series
from core import runs
from core.store import db
from core.store import repository as repo


class Record:
    def __init__(self, name: str, step: int, value: float, epoch: int = 1) -> None:
        self.name, self.step, self.epoch, self.value = name, step, epoch, value


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


def record(run_id: int, steps, name: str = "train_loss") -> None:
    rows = [Record(name, step, 1.0 / step) for step in steps]
    db.call(repo.record_metrics, run_id=run_id, worker_id="test-worker", records=rows)


def test_reads_only_new_rows_and_never_draws_a_step_twice():
    live.forget_snapshots()
    run_id = running_run()
    record(run_id, range(1, 11))
    curves = live.read_curves(runs.get_run(run_id), None)
    assert list(curves.curves["train_loss"].steps) == list(range(1, 11))
    record(run_id, range(11, 16))
    curves = live.read_curves(runs.get_run(run_id), curves)
    steps = curves.curves["train_loss"].steps
    assert list(steps) == list(range(1, 16)) and curves.recorded["train_loss"] == 15


def test_a_long_run_is_drawn_from_a_bounded_number_of_points():
    live.forget_snapshots()
    run_id = running_run()
    record(run_id, range(1, 20_001))
    record(run_id, range(1, 20_001), name="lr")
    curves = live.read_curves(runs.get_run(run_id), None)
    assert curves.recorded["train_loss"] == 20_000
    figure = live.curves_figure(curves)
    drawn = {trace.name: len(trace.x) for trace in figure.data}
    assert 0 < drawn["train loss"] <= series.MAX_POINTS
    assert drawn["learning rate"] <= series.MAX_POINTS


def test_a_reload_starts_from_the_servers_copy_and_sees_the_same_curve():
    live.forget_snapshots()
    run_id = running_run()
    record(run_id, range(1, 301))
    first = live.read_curves(runs.get_run(run_id), None)
    record(run_id, range(301, 311))
    reloaded = live.read_curves(runs.get_run(run_id), None)  # a new tab: no session copy
    assert reloaded is not first
    assert list(reloaded.curves["train_loss"].steps) == list(range(1, 311))
    reloaded.curves["train_loss"].values[:] = 0  # sessions never share arrays
    assert np.all(first.curves["train_loss"].values[:300] > 0)


def test_a_new_attempt_starts_the_curves_over():
    live.forget_snapshots()
    run_id = running_run()
    record(run_id, range(1, 6))
    curves = live.read_curves(runs.get_run(run_id), None)
    assert curves.attempts == runs.get_run(run_id).attempts
    curves.attempts += 1  # as if a worker had re-claimed the run and rewound it
    again = live.read_curves(runs.get_run(run_id), curves)
    assert again is not curves and list(again.curves["train_loss"].steps) == [1, 2, 3, 4, 5]
