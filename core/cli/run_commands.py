"""`studio train | submit | status | metrics | stop | pause | resume | runs | worker`.

stdout carries only the result (JSON with --json); progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import threading
from typing import Any

from core.cli.setting_flags import add_setting_flags, settings_from_args
from core.states import RunStatus


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands; each sets `handler=fn(args) -> exit code`."""
    train = subparsers.add_parser(
        "train", help="train a spec in the foreground (recorded like any run)"
    )
    _add_training_arguments(train)
    train.set_defaults(handler=train_command)

    submit = subparsers.add_parser("submit", help="queue a run for the workers")
    _add_training_arguments(submit)
    submit.set_defaults(handler=submit_command)

    status = subparsers.add_parser("status", help="a run's status, progress and latest metrics")
    status.add_argument("run_id", type=int, metavar="RUN_ID")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=status_command)

    metrics = subparsers.add_parser("metrics", help="every metric a run recorded")
    metrics.add_argument("run_id", type=int, metavar="RUN_ID")
    metrics.add_argument("--name", action="append", help="only this metric (repeatable)")
    output = metrics.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print a JSON list")
    output.add_argument("--csv", action="store_true", help="print CSV")
    metrics.set_defaults(handler=metrics_command)

    for verb, helptext in (
        ("stop", "stop a queued, running or paused run"),
        ("pause", "pause a run (it checkpoints first)"),
        ("resume", "queue a paused run again; it resumes from its latest checkpoint"),
    ):
        command = subparsers.add_parser(verb, help=helptext)
        command.add_argument("run_id", type=int, metavar="RUN_ID")
        command.add_argument("--json", action="store_true", help="print the run's status as JSON")
        if verb == "resume":
            command.add_argument(
                "--restart",
                action="store_true",
                help="train a paused, failed or cancelled run again from step 0, discarding its "
                "metrics and checkpoints (for a run whose checkpoints cannot be read)",
            )
        command.set_defaults(handler=steer_command, verb=verb)

    runs = subparsers.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs.add_argument("--status", help="only runs with this status")
    runs.add_argument("--limit", type=int, help="at most this many runs")
    runs.set_defaults(handler=runs_command)

    worker = subparsers.add_parser("worker", help="a background worker that trains queued runs")
    worker.add_argument("--once", action="store_true", help="exit when the queue is empty")
    worker.add_argument(
        "--poll", type=float, default=1.0, metavar="S", help="seconds between queue checks"
    )
    worker.add_argument("--max-runs", type=int, metavar="N", help="exit after N runs")
    worker.add_argument("--quiet", action="store_true", help="log warnings only")
    worker.add_argument(
        "--stop-with",
        type=int,
        metavar="PID",
        help="pause the current run and exit when process PID ends (how `studio ui` ties the "
        "worker it starts to itself)",
    )
    worker.set_defaults(handler=worker_command)


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC.json", help="the model spec file")
    parser.add_argument("--dataset", required=True, metavar="NAME", help="dataset name")
    parser.add_argument("--name", help="a name for the run's spec (default: the spec's name)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument(
        "--init-from",
        type=int,
        metavar="RUN_ID",
        help="start from that run's weights: every layer whose name and shape match is copied, "
        "the rest start fresh (the plan is printed before training)",
    )
    add_setting_flags(parser)  # every TrainConfig setting, generated from its schema


def _lineage(args: argparse.Namespace, spec: dict[str, Any]) -> dict[str, Any]:
    """parent_run_id and origin for `--init-from RUN_ID`, after printing (to stderr) which
    layers that run's weights fill, which start fresh and which are skipped and why."""
    if args.init_from is None:
        return {}
    from core.train.transfer import init_origin, preview_init

    report = preview_init(spec, args.dataset, args.init_from)
    print(f"initial weights {report.sentence()}", file=sys.stderr)
    return {"parent_run_id": args.init_from, "origin": init_origin(args.init_from)}


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str))


def train_command(args: argparse.Namespace) -> int:
    from core import runs
    from core.progress import ProgressBar
    from core.spec import load_spec
    from core.worker import GracefulSignals

    spec = load_spec(args.spec)
    bar: ProgressBar | None = None

    def progress(step: int, total: int, latest: dict[str, float]) -> None:
        nonlocal bar
        if total <= 0:
            return
        if bar is None:
            bar = ProgressBar(total, label="training", unit="step")
        note = f"loss {latest['train_loss']:.4f}" if "train_loss" in latest else ""
        bar.update(step, note)

    interrupted = threading.Event()
    with GracefulSignals(interrupted):
        result = runs.train_run_foreground(
            spec=spec,
            dataset=args.dataset,
            config=settings_from_args(args),
            spec_name=args.name,
            progress=progress,
            interrupted=interrupted,
            **_lineage(args, spec),
        )
    if bar is not None:
        bar.close(_summary_note(result), done=result["steps"] or 0)
    if args.json:
        _print_json(result)
    else:
        _print_result(result)
    if result["status"] == RunStatus.PAUSED:
        print(
            f"run {result['run_id']} paused at step {result['steps']}; "
            f"`studio resume {result['run_id']}` lets a worker finish it",
            file=sys.stderr,
        )
        return 130
    if result["status"] == RunStatus.FAILED:
        print(f"error: run {result['run_id']} failed: {result['error']}", file=sys.stderr)
        return 1
    return 0


def _summary_note(result: dict[str, Any]) -> str:
    accuracy = result["metrics"].get("test_accuracy")
    return f"{result['status']}" + (f", test accuracy {accuracy:.2%}" if accuracy else "")


def _print_result(result: dict[str, Any]) -> None:
    print(f"run {result['run_id']}: {result['status']}")
    if result.get("steps") is not None:
        print(f"  epochs {result['epochs']}, steps {result['steps']}")
    if result.get("duration_s") is not None:
        print(
            f"  {result['duration_s']:.1f} s, {result.get('samples_per_s') or 0:.0f} samples/s"
            + (f" on {result['device']}" if result.get("device") else "")
        )
    for name, value in result["metrics"].items():
        if value is not None:
            print(f"  {name}: {_format_metric(name, value)}")
    if result.get("error"):
        print(f"  error: {result['error']}")


def _format_metric(name: str, value: float) -> str:
    from core.metric_catalog import value_text

    return value_text(name, value)


def submit_command(args: argparse.Namespace) -> int:
    from core import runs
    from core.spec import load_spec

    spec = load_spec(args.spec)
    run_id = runs.submit_run(
        spec=spec,
        dataset=args.dataset,
        config=settings_from_args(args),
        spec_name=args.name,
        **_lineage(args, spec),
    )
    if args.json:
        _print_json({"run_id": run_id})
    else:
        print(f"queued run {run_id}; `studio status {run_id}` follows it")
    return 0


def _status(run_id: int) -> dict[str, Any]:
    from core import runs

    run = runs.get_run(run_id)
    return {
        "run_id": run.id,
        "status": run.status,
        "epoch": run.epoch,
        "step": run.step,
        "total_steps": run.total_steps,
        "metrics": runs.latest_metrics(run.id),
        "error": run.error,
        "requested_action": run.requested_action,
        "dataset": run.dataset,
        "spec_name": run.spec_name,
        "device": run.device,
        "worker_id": run.worker_id,
        "parent_run_id": run.parent_run_id,
        "origin": run.origin,
        "children": [child.id for child in runs.children_of(run.id)],
    }


def status_command(args: argparse.Namespace) -> int:
    status = _status(args.run_id)
    if args.json:
        _print_json(status)
        return 0
    total = f"/{status['total_steps']}" if status["total_steps"] else ""
    pending = f" ({status['requested_action']} requested)" if status["requested_action"] else ""
    print(
        f"run {status['run_id']}: {status['status']}{pending}, "
        f"epoch {status['epoch']}, step {status['step']}{total}"
    )
    for name, value in sorted(status["metrics"].items()):
        print(f"  {name}: {_format_metric(name, value)}")
    if status["error"]:
        print(f"  error: {status['error']}")
    if status["parent_run_id"] is not None:
        kind = (status["origin"] or {}).get("kind", "started")
        print(f"  from run {status['parent_run_id']} ({kind})")
    if status["children"]:
        print("  runs started from it: " + ", ".join(map(str, status["children"])))
    return 0


def metrics_command(args: argparse.Namespace) -> int:
    from core import runs

    runs.get_run(args.run_id)  # a clear error for a run that does not exist
    rows = runs.metrics_since(args.run_id, names=args.name)
    rows.sort(key=lambda r: (r.step, r.name))
    records = [{"name": r.name, "step": r.step, "epoch": r.epoch, "value": r.value} for r in rows]
    if args.json:
        _print_json(records)
    elif args.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=["name", "step", "epoch", "value"])
        writer.writeheader()
        writer.writerows(records)
    else:
        for record in records:
            print(f"{record['step']:>8}  {record['name']:<16} {record['value']:.6g}")
    return 0


def steer_command(args: argparse.Namespace) -> int:
    from core import runs

    action = {"stop": runs.request_stop, "pause": runs.request_pause}.get(
        args.verb, runs.request_resume
    )
    if getattr(args, "restart", False):
        action = runs.request_restart
    run = action(args.run_id)
    if args.json:
        _print_json(
            {"run_id": run.id, "status": run.status, "requested_action": run.requested_action}
        )
    elif run.requested_action:
        print(f"run {run.id}: {run.requested_action} requested; the worker obeys between steps")
    else:
        print(f"run {run.id}: {run.status}")
    return 0


def runs_command(args: argparse.Namespace) -> int:
    from core import runs

    listed = runs.list_runs(status=args.status, limit=args.limit)
    if args.json:
        _print_json(
            [
                {
                    "run_id": run.id,
                    "status": run.status,
                    "spec_name": run.spec_name,
                    "dataset": run.dataset,
                    "epoch": run.epoch,
                    "step": run.step,
                    "total_steps": run.total_steps,
                    "progress": run.progress,
                    "metrics": (run.result or {}).get("metrics", {}),
                    "error": run.error,
                    "created": run.created.isoformat(),
                    "parent_run_id": run.parent_run_id,
                    "origin_kind": (run.origin or {}).get("kind"),
                }
                for run in listed
            ]
        )
        return 0
    if not listed:
        print("no runs yet; `studio submit SPEC.json --dataset NAME` queues one")
        return 0
    width = max(14, *(len(run.dataset) for run in listed))  # uploads have long names
    print(f"{'RUN':>5}  {'STATUS':<10} {'PROGRESS':>8}  {'TEST ACC':>8}  {'DATASET':<{width}} SPEC")
    for run in listed:
        accuracy = (run.result or {}).get("metrics", {}).get("test_accuracy")
        shown = f"{accuracy:.2%}" if accuracy is not None else "-"
        print(
            f"{run.id:>5}  {run.status:<10} {run.progress:>8.0%}  {shown:>8}  "
            f"{run.dataset:<{width}} {run.spec_name or '-'}"
        )
    return 0


def worker_command(args: argparse.Namespace) -> int:
    from core.worker import run_worker

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its set-up chatter is not news
    trained = run_worker(
        once=args.once, poll_s=args.poll, max_runs=args.max_runs, stop_with=args.stop_with
    )
    print(f"worker trained {trained} run(s)", file=sys.stderr)
    return 0
