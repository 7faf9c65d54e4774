"""`studio report RUN_ID [-o report.html] [--samples N] [--threads N] [--json]`: one HTML
file to share."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from core.progress import ProgressBar

MAX_SAMPLES = 50  # core.report.build.MAX_SAMPLES (not imported here: it loads torch)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `studio report`."""
    parser = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report of a trained run",
        description=(
            "Write one HTML file, readable without ML training, that opens in any browser with "
            "no network and no studio: how well the run's model does, its most common mistakes, "
            "what it looks for in each class, example predictions right and wrong, and how far "
            "to trust the explanations (all measured on the test split)."
        ),
    )
    parser.add_argument("run_id", type=int, metavar="RUN_ID")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="where to write it (default: run-RUN_ID-report.html in this folder)",
    )
    parser.add_argument(
        "--samples",
        type=sample_count,
        default=6,
        metavar="N",
        help=f"example predictions to show, 0 to {MAX_SAMPLES}, about half of them mistakes "
        "(default 6)",
    )
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        metavar="N",
        help="PyTorch threads while measuring (default 1: the studio's small models run "
        "fastest on one, and several times faster than on two when other work shares the "
        "cores; 0: PyTorch's default, one per core)",
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"run_id", "path", "bytes", "seconds"}'
    )
    parser.set_defaults(handler=run_report)


def sample_count(text: str) -> int:
    """--samples: a whole number from 0 to MAX_SAMPLES."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= count <= MAX_SAMPLES:
        raise argparse.ArgumentTypeError(f"{count} is out of range; use 0 to {MAX_SAMPLES}")
    return count


def thread_count(text: str) -> int:
    """--threads: 0 (PyTorch's default) or a whole number of threads up to the machine's."""
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if count < 0:
        raise argparse.ArgumentTypeError(f"{count} threads; use 0 (one per core) or more")
    return count


def run_report(args: argparse.Namespace) -> int:
    import torch

    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _report(args)
    finally:
        torch.set_num_threads(threads)  # as it was, for a caller in the same process


def _report(args: argparse.Namespace) -> int:
    from core.report import write_run_report

    started = time.perf_counter()
    bar: ProgressBar | None = None

    def progress(done: int, total: int, note: str) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressBar(total, label=f"report run {args.run_id}", unit="step")
        bar.update(done, note)

    try:
        path = write_run_report(args.run_id, args.output, samples=args.samples, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - started
    size = path.stat().st_size
    if args.json:
        document = {
            "run_id": args.run_id,
            "path": str(path),
            "bytes": size,
            "seconds": round(seconds, 2),
        }
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(f"{path}\n")
    return 0
