"""Scale-out numbers: PostgreSQL claiming, exactly-once with several workers, DDP on CPU.

1. Claim latency on PostgreSQL (FOR UPDATE SKIP LOCKED): one claimer alone, then 4 processes
   claiming from the same queue at once (median and 95th percentile of one `claim_next_run`
   transaction, connection already open).
2. Exactly once: 4 `studio worker` processes drain 4 x 40 short runs; every run must be
   completed, claimed once (attempts 1), and its metrics recorded once.
3. One run on 1 and 2 CPU processes (torchrun + DistributedDataParallel, gloo): samples/s and
   test accuracy, same seed and global batch.

A throwaway PostgreSQL cluster is started like the tests do (tests/pg.py: Debian's
`postgresql` package, `make postgres`).

    .venv/bin/python bench/bench_scale.py [--runs-per-worker 40] [--workers 4] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLAIMER = textwrap.dedent(
    """
    import json, sys, time
    from core.store import db, repository as repo
    name, count = sys.argv[1], int(sys.argv[2])
    db.get_engine()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        run = db.call(repo.claim_next_run, worker_id=name)
        times.append(time.perf_counter() - started)
        if run is None:
            break
    print(json.dumps(times))
    """
)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def claim_latency(server, claimers: int, runs: int) -> dict[str, float]:
    """Queue `runs` runs, let `claimers` processes claim them all; latency of each claim."""
    import json

    from core.store import db
    from core.store import repository as repo

    url = server.new_database()
    os.environ["STUDIO_DATABASE_URL"] = url
    for _ in range(runs):
        db.call(repo.create_run, spec={}, dataset="digits", settings={})
    each = runs // claimers + 1
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, f"claimer-{i}", str(each)],
            cwd=ROOT,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(claimers)
    ]
    times = [t for p in procs for t in json.loads(p.communicate()[0])]
    claimed = db.call(repo.count_runs, statuses=["running"])
    db.dispose_engines()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p95_ms": percentile(times, 0.95) * 1000,
        "claimed": claimed,
        "runs": runs,
    }


def exactly_once(server, workers: int, per_worker: int) -> dict[str, float]:
    from core import runs
    from core.store import db
    from core.store import repository as repo
    from tests.specs import TINY_MLP

    os.environ["STUDIO_DATABASE_URL"] = server.new_database()
    config = {"steps": 2, "batch_size": 32, "device": "cpu", "log_every": 1}
    total = workers * per_worker
    queued = [runs.submit_run(spec=TINY_MLP, dataset="digits", config=config) for _ in range(total)]
    started = time.perf_counter()
    logs = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--once", "--poll", "0.05"],
            cwd=ROOT,
            env=os.environ | {"STUDIO_HEARTBEAT_S": "0.5"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(logs / f"worker-{i}.log").open("w"),
        )
        for i in range(workers)
    ]
    codes = [p.wait() for p in procs]
    elapsed = time.perf_counter() - started
    done = [runs.get_run(run_id) for run_id in queued]
    per_worker_counts: dict[str, int] = {}
    for run in done:
        per_worker_counts[run.worker_id] = per_worker_counts.get(run.worker_id, 0) + 1
    duplicates = sum(db.call(repo.metric_duplicates, run_id=run.id) for run in done)
    db.dispose_engines()
    return {
        "runs": total,
        "completed": sum(run.status == "completed" for run in done),
        "claimed_once": sum(run.attempts == 1 for run in done),
        "duplicate_metrics": duplicates,
        "worker_exit_codes": codes,
        "runs_per_worker": sorted(per_worker_counts.values()),
        "seconds": elapsed,
    }


def ddp_cpu(epochs: int) -> list[dict[str, float]]:
    from core import runs
    from tests.specs import NARROW_DIGITS_CNN

    home = Path(tempfile.mkdtemp(prefix="bench-ddp-"))
    os.environ["STUDIO_HOME"] = str(home)
    os.environ["STUDIO_DATABASE_URL"] = f"sqlite:///{home / 'studio.db'}"
    config = {"epochs": epochs, "batch_size": 64, "device": "cpu", "seed": 3}
    rows = []
    for processes in (1, 2):
        started = time.perf_counter()
        result = runs.train_run_foreground(
            spec=NARROW_DIGITS_CNN, dataset="digits", config=config | {"processes": processes}
        )
        rows.append(
            {
                "processes": processes,
                "status": result["status"],
                "samples_per_s": result["samples_per_s"],
                "duration_s": result["duration_s"],
                "wall_s": time.perf_counter() - started,  # with process start-up
                "test_accuracy": result["metrics"].get("test_accuracy", float("nan")),
            }
        )
    return rows


class _Skip(Exception):
    """--only-ddp: leave the PostgreSQL block."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--runs-per-worker", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only-ddp", action="store_true", help="skip the PostgreSQL parts")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch threads of the 1-process run (torchrun gives each of N processes "
        "cores/N); 0 = PyTorch's default",
    )  # fmt: skip
    args = parser.parse_args()
    from tests.pg import PostgresServer

    home = Path(tempfile.mkdtemp(prefix="bench-scale-home-"))
    os.environ["STUDIO_HOME"] = str(home)
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    server = None if args.only_ddp else PostgresServer()
    try:
        if server is None:
            raise _Skip
        print("\n1. claim latency on PostgreSQL (one claim_next_run transaction)")
        print(f"{'claimers':>9} {'runs':>6} {'claimed':>8} {'median ms':>10} {'p95 ms':>8}")
        for claimers in (1, 4):
            row = claim_latency(server, claimers, 400)
            print(
                f"{claimers:>9} {row['runs']:>6} {row['claimed']:>8} "
                f"{row['median_ms']:>10.2f} {row['p95_ms']:>8.2f}"
            )
        print(f"\n2. {args.workers} workers x {args.runs_per_worker} short runs on PostgreSQL")
        row = exactly_once(server, args.workers, args.runs_per_worker)
        for key, value in row.items():
            print(f"  {key:>18}: {value if not isinstance(value, float) else round(value, 1)}")
        ok = row["completed"] == row["claimed_once"] == row["runs"] and not row["duplicate_metrics"]
        print(f"  {'exactly once':>18}: {'yes' if ok else 'NO'}")
    except _Skip:
        pass
    finally:
        if server is not None:
            server.stop()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"\n3. one run on CPU processes (digits, narrow CNN, {args.epochs} epochs, batch 64)")
    print(
        f"{'processes':>9} {'status':>10} {'samples/s':>10} {'train s':>8} {'wall s':>7} {'test acc':>9}"
    )
    rows = ddp_cpu(args.epochs)
    for row in rows:
        print(
            f"{row['processes']:>9} {row['status']:>10} {row['samples_per_s']:>10.0f} "
            f"{row['duration_s']:>8.1f} {row['wall_s']:>7.1f} {row['test_accuracy']:>9.4f}"
        )
    gap = abs(rows[1]["test_accuracy"] - rows[0]["test_accuracy"]) * 100
    print(f"  accuracy gap: {gap:.2f} points; speed ratio 2/1: "
          f"{rows[1]['samples_per_s'] / max(rows[0]['samples_per_s'], 1e-9):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
