"""Loading built-in datasets: digits and mnist1d, cold (empty cache) and cached, side by side.

    python bench/bench_datasets.py [--runs 7]

Runs in a throw-away STUDIO_HOME so it never touches ~/.studio. The target is each cached
load under one second; imports (torch, scikit-learn) are paid once before timing starts,
except for the cold digits load whose scikit-learn import is part of building its cache.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUDGET_S = 1.0  # the target for loading digits and cached mnist1d


def timed(load: Callable[[], object]) -> float:
    started = time.perf_counter()
    load()
    return time.perf_counter() - started


def median_of(
    runs: int, load: Callable[[], object], before: Callable[[], None] | None = None
) -> float:
    times = []
    for _ in range(runs):
        if before:
            before()
        times.append(timed(load))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per cached measurement")
    parser.add_argument("--cold-runs", type=int, default=3, help="runs per cold measurement")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="studio-bench-"))
    os.environ["STUDIO_HOME"] = str(home)
    from core.config import get_settings
    from core.data import load_dataset

    cache = get_settings().dataset_cache_dir

    def clear_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)

    quiet = contextlib.redirect_stderr(io.StringIO())  # mnist1d's progress bar
    try:
        with quiet:
            digits_cold = median_of(args.cold_runs, lambda: load_dataset("digits"), clear_cache)
            mnist1d_cold = median_of(args.cold_runs, lambda: load_dataset("mnist1d"), clear_cache)
            load_dataset("digits")
            load_dataset("mnist1d")
        digits_cached = median_of(args.runs, lambda: load_dataset("digits"))
        mnist1d_cached = median_of(args.runs, lambda: load_dataset("mnist1d"))
    finally:
        shutil.rmtree(home, ignore_errors=True)

    rows = [
        ("digits", digits_cold, digits_cached),
        ("mnist1d", mnist1d_cold, mnist1d_cached),
    ]
    print(f"{'dataset':<10}{'cold s':>10}{'cached s':>10}{'cold/cached':>13}{'cached vs 1 s':>15}")
    for name, cold, cached in rows:
        verdict = "ok" if cached < BUDGET_S else "OVER"
        print(
            f"{name:<10}{cold:>10.3f}{cached:>10.4f}{cold / cached:>12.0f}x"
            f"{cached / BUDGET_S:>12.1%} {verdict}"
        )
    print(
        f"median of {args.runs} cached / {args.cold_runs} cold runs; python {sys.version.split()[0]}"
    )
    return 0 if all(cached < BUDGET_S for _, _, cached in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
