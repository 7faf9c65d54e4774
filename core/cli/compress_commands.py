"""`studio compress RUN_ID [--prune RATIO] [--structured|--unstructured] [--finetune-epochs N]
[--int8] [--foreground] [--json]`: a smaller model from a trained run, and the before/after table.

stdout carries only the result (the table, or JSON with --json); progress goes to stderr. A
fine-tune is queued for the workers like `studio submit` (with --foreground it trains here like
`studio train`). `studio compress RUN_ID` alone, for a run a compression made, compares it with
its parent.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.cli.setting_flags import add_setting_flags, settings_from_args

# the fine-tune's length is --finetune-epochs; every other run setting may be changed
LENGTH_SETTINGS = ("epochs", "steps")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `studio compress`."""
    parser = subparsers.add_parser(
        "compress",
        help="prune and/or quantize a trained run; before/after table",
        description=(
            "Make a trained run smaller: structured pruning (channels and units removed, a "
            "smaller spec), unstructured pruning (smallest weights zeroed) and/or int8 (ONNX, "
            "onnxruntime's quantizer); then compare parameters, FLOPs, size, CPU latency, test "
            "accuracy and whether the model still relies on the same input regions. Given a run "
            "made by compression and no options, compares it with its parent."
        ),
    )
    parser.add_argument("run_id", type=int, metavar="RUN_ID")
    parser.add_argument(
        "--prune", type=float, metavar="RATIO", help="share to remove, 0 < RATIO < 1 (e.g. 0.5)"
    )
    method = parser.add_mutually_exclusive_group()
    method.add_argument(
        "--structured",
        dest="method",
        action="store_const",
        const="structured",
        help="remove whole channels and units: a smaller spec (default)",
    )
    method.add_argument(
        "--unstructured",
        dest="method",
        action="store_const",
        const="unstructured",
        help="zero the smallest weights, shapes unchanged (not faster on a CPU by itself)",
    )
    parser.add_argument(
        "--finetune-epochs",
        type=int,
        default=0,
        metavar="N",
        help="fine-tune the pruned model for N epochs as a new run with the parent's settings "
        "(default 0: no fine-tune)",
    )
    parser.add_argument("--int8", action="store_true", help="int8 ONNX (dynamic quantization)")
    parser.add_argument(
        "--foreground",
        action="store_true",
        help="fine-tune here, like `studio train`, instead of queueing it for the workers",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=100,
        metavar="N",
        help="test samples for the attribution agreement (default 100)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    add_setting_flags(parser, _finetune_schema())  # fine-tune settings that differ
    parser.set_defaults(handler=compress_command, method=None)


def _finetune_schema() -> list[dict[str, Any]]:
    from core.train.config import TrainConfig

    return [e for e in TrainConfig.schema() if e["name"] not in LENGTH_SETTINGS]


def compress_command(args: argparse.Namespace) -> int:
    from core.compress import CompressOptions, compare_with_parent, compress_run
    from core.progress import ProgressBar

    changed = settings_from_args(args, _finetune_schema())
    if args.prune is None and not args.int8 and not args.finetune_epochs and not changed:
        report = compare_with_parent(args.run_id, samples=args.samples)
    else:
        bars: dict[str, ProgressBar] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage != "fine-tuning":
                print(f"{stage}...", file=sys.stderr, flush=True)
                return
            if "fine-tuning" not in bars:
                bars[stage] = ProgressBar(total, label="fine-tuning", unit="step")
            bars[stage].update(done)

        options = CompressOptions(
            prune=args.prune,
            method=args.method or "structured",
            finetune_epochs=args.finetune_epochs,
            int8=args.int8,
            foreground=args.foreground,
            settings=changed,
            samples=args.samples,
        )
        report = compress_run(args.run_id, options, progress=progress)
        for bar in bars.values():
            bar.close()
    result = report.to_json()
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(format_report(result))
    return 0


def format_report(result: dict[str, Any]) -> str:
    """The before/after table in plain text, then what happened in sentences."""
    from core.compress.table import table_rows

    head = f"run {result['parent_run_id']} -> {result['method']}"
    if result.get("run_id") is not None:
        head += f" (run {result['run_id']})"
    lines = [head, f"{'':<26}{'before':>14}{'after':>14}{'ratio':>9}"]
    for row in table_rows(result):
        lines.append(f"{row['figure']:<26}{row['before']:>14}{row['after']:>14}{row['ratio']:>9}")
    agreement = result.get("attribution_agreement")
    if agreement:
        lines.append(agreement["sentence"])
    lines += result.get("notes") or []
    if result.get("folder"):
        lines.append(f"files: {result['folder']}")
    return "\n".join(lines)
