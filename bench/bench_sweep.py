"""A 16-trial sweep on digits trained by 2 worker processes: wall time against the same trials
one after another (1 worker), and the optimizer steps the median pruner saves against no
pruning, with the best validation accuracy of each.

1. the sweep itself: TPE, median pruner, 2 workers (its 16 trials' parameters are kept);
2. the same 16 trials (enqueued in the same order), no pruner, 2 workers;
3. the same 16 trials, no pruner, 1 worker: one after another.
Each configuration has its own STUDIO_HOME; workers are started and idle before the clock starts.

Run: .venv/bin/python bench/bench_sweep.py [--trials 16] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SPEC = {  # a narrow digits CNN: one trial trains in about a second on a quiet CPU
    "name": "digits-cnn",
    "layers": [
        {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 32},
        {"type": "ReLU"},
        {"type": "Linear"},
    ],
}
PARAMS = ["lr=1e-4:3e-1:log", "batch_size=16,32,64,128", "block.0.out_channels=4:16"]


def run_configuration(
    *, workers: int, pruner: str, trials: int, epochs: int, first: list[dict] | None
) -> dict:
    """One sweep in a fresh STUDIO_HOME with `workers` worker processes; its figures."""
    home = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    env = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_DATABASE_URL": f"sqlite:///{home / 'studio.db'}",
        "STUDIO_HEARTBEAT_S": "0.5",
        # one thread per worker: 2 workers on a 2-core machine use both cores, 1 worker one;
        # more threads per process only fight each other (and the rest of a shared machine)
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    os.environ.update({k: env[k] for k in ("STUDIO_HOME", "STUDIO_DATABASE_URL")})
    from core import runs
    from core.store import db
    from core.sweeps import study as studies

    db.dispose_engines()
    studies.forget_storages()
    db.get_engine()  # migrate before the workers start
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--poll", "0.1", "--quiet"],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(workers)
    ]
    try:
        while len(runs.list_workers()) < workers:
            time.sleep(0.2)
        from core.sweeps.create import create_sweep
        from core.sweeps.params import parse_param
        from core.sweeps.status import sweep_status

        warm_up()
        started = time.perf_counter()
        sweep_id = create_sweep(
            spec=SPEC,
            dataset="digits",
            params=[parse_param(p) for p in PARAMS],
            trials=trials,
            settings={"epochs": epochs, "device": "cpu", "seed": 0},
            pruner=pruner,
            first_trials=first or (),
        )
        while (status := sweep_status(sweep_id))["status"] == "running":
            time.sleep(0.5)
        wall = time.perf_counter() - started
        print(f"{workers} worker(s), pruner {pruner}: {wall:.1f} s", file=sys.stderr)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
    trials_done = status["trials"]
    trained = [runs.get_run(t["run_id"]) for t in trials_done]
    span = max(r.finished for r in trained) - min(r.started for r in trained)
    return {
        "span_s": span.total_seconds(),
        "workers": workers,
        "pruner": pruner,
        "wall_s": wall,
        "steps": sum(t["steps"] for t in trials_done),
        "pruned": sum(t["state"] == "pruned" for t in trials_done),
        "best": status["best"]["value"] if status["best"] else None,
        "params": [t["params"] for t in trials_done],
    }


def warm_up() -> None:
    """Imports and the dataset in this process before the clock starts (torch alone takes
    seconds to import): the figures are the sweep's, not the bench's start-up."""
    from core.data import describe_dataset
    from core.runs.submit import check_launch

    check_launch(SPEC, describe_dataset("digits").facts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    sweep = run_configuration(
        workers=2, pruner="median", trials=args.trials, epochs=args.epochs, first=None
    )
    same = sweep["params"]
    unpruned = run_configuration(
        workers=2, pruner="none", trials=args.trials, epochs=args.epochs, first=same
    )
    sequential = run_configuration(
        workers=1, pruner="none", trials=args.trials, epochs=args.epochs, first=same
    )
    rows = [
        ("2 workers, median pruner (the sweep)", sweep),
        ("2 workers, no pruner (same trials)", unpruned),
        ("1 worker, no pruner (same trials)", sequential),
    ]
    print(f"{args.trials} trials on digits, {args.epochs} epochs each, CPU")
    print(
        f"{'configuration':<40} {'wall s':>7} {'trials s':>9} {'steps':>6} {'pruned':>6} "
        f"{'best val acc':>12}"
    )
    for label, row in rows:
        print(
            f"{label:<40} {row['wall_s']:>7.1f} {row['span_s']:>9.1f} {row['steps']:>6} "
            f"{row['pruned']:>6} {row['best']:>12.4f}"
        )
    print("wall: sweep created -> sweep ended; trials: first trial started -> last one ended")
    print(
        f"2 workers vs one after another: {sequential['wall_s'] / unpruned['wall_s']:.2f}x "
        "faster (same trials, no pruning)"
    )
    saved = 1 - sweep["steps"] / unpruned["steps"]
    print(
        f"median pruner: {saved:.0%} of the steps saved; best accuracy "
        f"{sweep['best']:.4f} vs {unpruned['best']:.4f} without pruning"
    )
    print(
        json.dumps({label: {k: v for k, v in row.items() if k != "params"} for label, row in rows})
    )


if __name__ == "__main__":
    main()
