"""UI benchmarks, measured side by side in one run.

1. Live chart cost: a run with 100,000 recorded points vs one with 1,000, through the Train
   page's own path (app.live: one cache per server, min/max per bucket on the first read and on
   the incremental reads after, figure,
   JSON as Streamlit sends it). Goal: about equal.
2. Training throughput with a Train page open and polling every second (what the page's live
   fragment does each second: read the run and its new metric rows, rebuild the figure when rows
   came, serialize it) vs no page open, interleaved pairs. Goal: >= 0.97x.

Run: .venv/bin/python bench/bench_ui.py   (about two minutes on two cores)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.specs import DIGITS_CNN  # noqa: E402

HOME = Path(tempfile.mkdtemp(prefix="studio-bench-ui-"))
os.environ["STUDIO_HOME"] = str(HOME)
os.environ["STUDIO_DATABASE_URL"] = f"sqlite:///{HOME / 'studio.db'}"

from app import live as live_curves  # noqa: E402
from core import runs  # noqa: E402
from core.store import db  # noqa: E402
from core.store import repository as repo  # noqa: E402


class Record:
    def __init__(self, name: str, step: int, epoch: int, value: float) -> None:
        self.name, self.step, self.epoch, self.value = name, step, epoch, value


def fake_run(points: int) -> int:
    """A running run with `points` train-loss / lr / samples-per-second points and 50 epochs of
    validation metrics, written in batches as a worker would."""
    worker = f"bench-{points}"
    run = db.call(
        repo.create_run,
        spec=DIGITS_CNN,
        dataset="digits",
        settings={"batch_size": 64},
        status="running",
        worker_id=worker,
    )
    per_epoch = max(1, points // 50)
    batch = []
    for step in range(1, points + 1):
        loss = 2.3 / (1 + step / 500)
        batch += [
            Record("train_loss", step, step // per_epoch + 1, loss),
            Record("lr", step, step // per_epoch + 1, 1e-3),
            Record("samples_per_s", step, step // per_epoch + 1, 5000.0),
        ]
        if step % per_epoch == 0:
            batch += [
                Record("val_loss", step, step // per_epoch, loss * 1.1),
                Record("val_accuracy", step, step // per_epoch, 1 - loss / 2.5),
            ]
        if len(batch) >= 6000 or step == points:
            db.call(repo.record_metrics, run_id=run.id, worker_id=worker, records=batch)
            batch = []
    return run.id


def add_points(run_id: int, start: int, count: int) -> None:
    records = []
    for step in range(start, start + count):
        records += [Record("train_loss", step, 99, 0.1), Record("lr", step, 99, 1e-3)]
    db.call(repo.record_metrics, run_id=run_id, worker_id=f"bench-{start - 1}", records=records)


def chart_cost(run_id: int, points: int, repeats: int = 15) -> tuple[float, float, float]:
    """Median ms of what the page does: the first view of the run by this server (a cold read),
    a reload or second tab (starting from the server's copy), one live tick with new rows."""
    cold, reload, tick = [], [], []
    for _ in range(repeats):
        live_curves.forget_cache()
        started = time.perf_counter()
        curves = live_curves.read_curves(runs.get_run(run_id))
        live_curves.curves_figure(curves).to_json()
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        curves = live_curves.read_curves(runs.get_run(run_id))
        live_curves.curves_figure(curves).to_json()
        reload.append(time.perf_counter() - started)
    next_step = points + 1
    for _ in range(repeats):
        add_points(run_id, next_step, 25)  # what one polling interval brings
        next_step += 25
        started = time.perf_counter()
        curves = live_curves.read_curves(runs.get_run(run_id))
        live_curves.curves_figure(curves).to_json()
        tick.append(time.perf_counter() - started)
    return tuple(statistics.median(t) * 1e3 for t in (cold, reload, tick))


def bench_charts() -> None:
    print("== 1. live chart: figure build + JSON, through the Train page's path")
    results = {}
    for points in (1_000, 100_000):
        results[points] = chart_cost(fake_run(points), points)
        cold, reload, tick = results[points]
        print(
            f"  {points:>7,} recorded points: first view {cold:6.1f} ms, reload / second tab "
            f"{reload:6.1f} ms, live tick {tick:6.1f} ms"
        )
    ratios = [large / small for large, small in zip(results[100_000], results[1_000], strict=True)]
    print(
        f"  ratio 100k / 1k: first view {ratios[0]:.2f}x, reload {ratios[1]:.2f}x, "
        f"live tick {ratios[2]:.2f}x   (goal: about 1)"
    )


def train_once(spec_path: Path, steps: int) -> float:
    """samples/s of one fixed foreground run (`studio train`), in its own process."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "core.cli",
            "train",
            str(spec_path),
            "--dataset",
            "digits",
            "--steps",
            str(steps),
            "--batch-size",
            "64",
            "--seed",
            "0",
            "--json",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout)["samples_per_s"])


class PagePoller:
    """A Train page open on the newest run: every second it does what the page's live fragment
    does (read the run, read new metric rows, rebuild the figure only when rows came, serialize
    it for the browser), in this process, next to the training process."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.polls = 0
        self.busy_s = 0.0
        self.cpu_s = 0.0  # CPU time of the polling thread itself: what it takes from training

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        curves, key, figure = None, None, None
        while not self.stop.is_set():
            started = time.monotonic()
            cpu_started = time.thread_time()
            newest = runs.list_runs(limit=1)
            if newest:
                curves = live_curves.read_curves(runs.get_run(newest[0].id))
                if live_curves.figure_key(curves) != key:
                    key = live_curves.figure_key(curves)
                    figure = live_curves.curves_figure(curves)
                figure.to_json()
            self.polls += 1
            self.busy_s += time.monotonic() - started
            self.cpu_s += time.thread_time() - cpu_started
            self.stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


def bench_throughput(steps: int = 1500, pairs: int = 9) -> None:
    print("== 2. training throughput with a Train page polling every second")
    spec_path = HOME / "bench-cnn.json"
    spec_path.write_text(json.dumps(DIGITS_CNN))
    train_once(spec_path, 30)  # warm the dataset cache and the imports
    alone, watched, cpu_per_poll = [], [], []
    for _ in range(pairs):  # interleaved, so drift in machine load hits both sides alike
        alone.append(train_once(spec_path, steps))
        poller = PagePoller()
        poller.start()
        try:
            watched.append(train_once(spec_path, steps))
        finally:
            poller.close()
        cpu_per_poll.append(poller.cpu_s / max(1, poller.polls))
        print(
            f"  pair: alone {alone[-1]:8.0f} samples/s, page open {watched[-1]:8.0f} samples/s "
            f"({poller.polls} polls, {1e3 * poller.busy_s / max(1, poller.polls):.0f} ms wall, "
            f"{1e3 * cpu_per_poll[-1]:.0f} ms CPU each)"
        )
    ratio = statistics.median(w / a for w, a in zip(watched, alone, strict=True))
    print(
        f"  median: alone {statistics.median(alone):.0f}, page open "
        f"{statistics.median(watched):.0f} samples/s; median pair ratio {ratio:.3f}x "
        "(goal: >= 0.97)"
    )
    cores = os.cpu_count() or 1
    share = statistics.median(cpu_per_poll) / 1.0  # one poll per second
    print(
        f"  the page's polling uses {share:.1%} of one core; on {cores} cores that leaves "
        f"training about {1 - share / cores:.3f}x of the machine (the pair ratio above is "
        "noisy on a shared machine; this bound is not)"
    )


if __name__ == "__main__":
    print(f"STUDIO_HOME={HOME}")
    bench_charts()
    bench_throughput()
