"""How long `studio report` takes for each built-in dataset (goal: under a minute on 2 CPU cores).

For each built-in dataset on this machine, a run of its template is trained first (not timed),
then `studio report RUN --json` runs as a person runs it: a fresh process that imports, loads
the run, measures everything the report says and writes the file. Its progress bar is shown
while it runs (stderr passes through). Each report is made twice, side by side: with PyTorch's
default threads (`--threads 0`, one per core) and with one (`--threads 1`, the default), which
wins for these small models, by far when other processes share the cores. torchvision datasets whose files are not on
the machine are listed as skipped.

Run: .venv/bin/python bench/bench_report.py [--samples 6]
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
TEMPLATES = {  # dataset -> (template, epochs): the shipped template meant for it
    "digits": ("digits-cnn", 3),
    "mnist1d": ("mnist1d-cnn", 3),
    "mnist": ("digits-cnn", 1),
    "fashion-mnist": ("digits-cnn", 1),
    "cifar10": ("cifar10-tutorial-cnn", 1),
}
GOAL_S = 60.0


def train(dataset: str, template: str, epochs: int) -> int:
    from core import runs
    from core.templates import get_template

    result = runs.train_run_foreground(
        spec=get_template(template).spec, dataset=dataset, config={"epochs": epochs, "seed": 0}
    )
    if result["status"] != "completed":
        raise SystemExit(f"training {template} on {dataset} failed: {result['error']}")
    return int(result["run_id"])


def report(run_id: int, out: Path, samples: int, threads: str) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "report", str(run_id), "-o", str(out)]
        + ["--samples", str(samples), "--threads", threads, "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,  # the JSON; the progress bar goes to the terminal
        text=True,
        check=True,
    )
    return time.perf_counter() - started, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as home:
        os.environ["STUDIO_HOME"] = home
        os.environ.pop("STUDIO_DATABASE_URL", None)
        from core.data import list_datasets

        available = {info.name: info for info in list_datasets() if info.available}
        rows = []
        for dataset, (template, epochs) in TEMPLATES.items():
            if dataset not in available:
                rows.append((dataset, template, "-", "-", "skipped: files not on this machine"))
                continue
            print(f"training {template} on {dataset} ({epochs} epochs, not timed)…", flush=True)
            run_id = train(dataset, template, epochs)
            out = Path(home) / f"{dataset}.html"
            walls = {}
            for threads in ("0", "1"):  # 0: PyTorch's default, one thread per core
                print(f"report of run {run_id} ({dataset}), --threads {threads}", flush=True)
                walls[threads], document = report(run_id, out, args.samples, threads)
            verdict = "under a minute" if min(walls.values()) < GOAL_S else "OVER a minute"
            size = f"{document['bytes'] / 1e6:.1f} MB"
            seconds = f"{walls['0']:.1f} / {walls['1']:.1f}"
            rows.append((dataset, template, seconds, size, verdict))
    print()
    print(f"studio report --samples {args.samples}, {os.cpu_count()} CPU cores, wall time")
    print(f"{'dataset':<14} {'template':<22} {'s (0 / 1 thread)':>24} {'file':>8}  verdict")
    for dataset, template, seconds, size, verdict in rows:
        print(f"{dataset:<14} {template:<22} {seconds:>24} {size:>8}  {verdict}")


if __name__ == "__main__":
    main()
