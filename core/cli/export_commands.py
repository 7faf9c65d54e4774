"""`studio export RUN_ID --format onnx|pt2|bundle [-o PATH] [--json]`: a finished run as a
file that runs elsewhere, checked on real test samples before it is handed over."""

from __future__ import annotations

import argparse
import json
import sys

from core.export import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `studio export`."""
    parser = subparsers.add_parser(
        "export",
        help="export a finished run as ONNX, torch.export (pt2) or a servable bundle",
        description=(
            "Export a finished run's latest checkpoint. onnx: one ONNX file with a dynamic "
            "batch dimension; pt2: a torch.export program; bundle: a folder with the ONNX "
            "file, the weights (safetensors), the spec, the preprocessing contract, a model "
            "card and a standalone serve.py. Each export is run on real test samples at batch 1 "
            "and 64 and must answer as the studio's model does (largest absolute difference "
            "below 1e-4)."
        ),
    )
    parser.add_argument("run_id", type=int, metavar="RUN_ID")
    parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    parser.add_argument(
        "-o",
        "--output",
        default=None,
        metavar="PATH",
        help="where to write it (must not exist; default: STUDIO_HOME/artifacts/exports/run-ID/)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=export_command)


def export_command(args: argparse.Namespace) -> int:
    from core.export import export_run
    from core.progress import ProgressBar

    bar: ProgressBar | None = None

    def progress(done: int, total: int, note: str) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressBar(total, label=f"export {args.fmt}", unit="step")
        bar.update(done, note, force=True)

    try:
        result = export_run(args.run_id, args.fmt, args.output, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        json.dump(result.to_json(), sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(
            f"{result.path}\n{result.format}, {result.bytes:,} bytes; answers as the studio's "
            f"model to within {result.max_abs_diff:.3g} on real test samples\n"
        )
    return 0
