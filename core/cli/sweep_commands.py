"""`studio sweep | sweep-status | sweeps | sweep-stop`: search settings with the workers.

stdout carries only the result (JSON with --json); progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from core.cli.setting_flags import add_setting_flags, settings_from_args

WAIT_POLL_S = 1.0  # how often `sweep --wait` reads the sweep


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's sub-commands; each sets `handler=fn(args) -> exit code`."""
    from core.sweeps.objective import OBJECTIVES
    from core.sweeps.study import PRUNERS, SAMPLERS

    sweep = subparsers.add_parser(
        "sweep",
        help="search run settings and block arguments; each trial is a run the workers train",
    )
    sweep.add_argument("spec", metavar="SPEC.json", help="the model spec file")
    sweep.add_argument("--dataset", required=True, metavar="NAME", help="dataset name")
    sweep.add_argument("--trials", type=int, metavar="N", help="how many trials to run")
    sweep.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="start no trial after S seconds (running ones finish); with or instead of --trials",
    )
    sweep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:log] | NAME=a,b,c",
        help="a parameter to search (repeatable): a run setting (lr, batch_size, optimizer, "
        "weight_decay, ...), dropout (every Dropout block's p) or block.ID_OR_INDEX.ARG "
        "(e.g. block.2.out_channels=8:32)",
    )
    sweep.add_argument(
        "--objective",
        choices=OBJECTIVES,
        help="the validation metric to optimize (default val_accuracy, maximized; val_loss, "
        "minimized, for regression); a trial's value is its best one",
    )
    sweep.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="default tpe")
    sweep.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="median",
        help="stop unpromising trials early (default median)",
    )
    sweep.add_argument("--name", help="a name for the sweep")
    sweep.add_argument("--wait", action="store_true", help="wait for the end; print the status")
    sweep.add_argument("--json", action="store_true", help="print the result as JSON")
    add_setting_flags(sweep)  # the base settings every trial starts from
    sweep.set_defaults(handler=sweep_command)

    status = subparsers.add_parser("sweep-status", help="a sweep's trials and its best one")
    status.add_argument("sweep_id", type=int, metavar="SWEEP_ID")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=sweep_status_command)

    listing = subparsers.add_parser("sweeps", help="list sweeps, newest first")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=sweeps_command)

    stop = subparsers.add_parser(
        "sweep-stop", help="stop a sweep: no more trials; its running trials are stopped"
    )
    stop.add_argument("sweep_id", type=int, metavar="SWEEP_ID")
    stop.add_argument("--json", action="store_true", help="print the status as JSON")
    stop.set_defaults(handler=sweep_stop_command)


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str))


def sweep_command(args: argparse.Namespace) -> int:
    from core.errors import SettingsError
    from core.spec import load_spec
    from core.sweeps.create import create_sweep
    from core.sweeps.params import parse_param

    if args.trials is None and args.timeout is None and args.sampler != "grid":
        raise SettingsError("give --trials N (and/or --timeout S): the sweep's budget")
    spec = load_spec(args.spec)
    sweep_id = create_sweep(
        spec=spec,
        dataset=args.dataset,
        params=[parse_param(text) for text in args.param],
        trials=args.trials,
        timeout_s=args.timeout,
        settings=settings_from_args(args),
        objective=args.objective,
        sampler=args.sampler,
        pruner=args.pruner,
        name=args.name,
    )
    _warn_without_workers()
    if not args.wait:
        if args.json:
            _print_json({"sweep_id": sweep_id})
        else:
            print(f"sweep {sweep_id} queued; `studio sweep-status {sweep_id}` follows it")
        return 0
    status = _wait(sweep_id)
    if args.json:
        _print_json(status)
    else:
        _print_status(status)
    return 0


def _warn_without_workers() -> None:
    from core.runs import list_workers
    from core.sweeps.queue import live_workers

    if not list_workers():
        print(
            "no worker is alive: trials wait in the queue until `studio worker` (or `studio ui`) "
            "runs",
            file=sys.stderr,
        )
    else:
        print(f"trials run {live_workers()} at a time (one per live worker)", file=sys.stderr)


def _wait(sweep_id: int) -> dict[str, Any]:
    """Poll the sweep until it ends; a line on stderr each time a trial ends."""
    from core.states import SweepStatus
    from core.sweeps.status import sweep_status

    reported = -1
    while True:
        status = sweep_status(sweep_id)
        ended = [t for t in status["trials"] if _ended(t["state"])]
        if len(ended) != reported:
            reported = len(ended)
            total = status["budget"]["trials"]
            best = status["best"]
            note = f", best {best['value']:.4g} (trial {best['number']})" if best else ""
            print(
                f"sweep {sweep_id}: {reported}/{total or '?'} trials ended{note}", file=sys.stderr
            )
        if status["status"] != SweepStatus.RUNNING:
            return status
        time.sleep(WAIT_POLL_S)


def _ended(state: str) -> bool:
    from core.states import FINISHED

    return state in FINISHED or state in ("refused", "deleted")


def sweep_status_command(args: argparse.Namespace) -> int:
    from core.sweeps.status import sweep_status

    status = sweep_status(args.sweep_id)
    if args.json:
        _print_json(status)
    else:
        _print_status(status)
    return 0


def _print_status(status: dict[str, Any]) -> None:
    goal = "highest" if status["direction"] == "maximize" else "lowest"
    print(
        f"sweep {status['sweep_id']} ({status['name']}): {status['status']}, "
        f"{goal} {status['objective']}, {status['sampler']} sampler, {status['pruner']} pruner"
    )
    print(f"{'TRIAL':>5}  {'RUN':>5}  {'STATE':<10} {'VALUE':>8}  PARAMS")
    for trial in status["trials"]:
        value = f"{trial['value']:.4g}" if trial["value"] is not None else "-"
        run = str(trial["run_id"]) if trial["run_id"] is not None else "-"
        params = ", ".join(f"{k}={_short(v)}" for k, v in trial["params"].items())
        print(f"{trial['number']:>5}  {run:>5}  {trial['state']:<10} {value:>8}  {params}")
    best = status["best"]
    if best:
        params = ", ".join(f"{k}={_short(v)}" for k, v in best["params"].items())
        print(f"best: trial {best['number']} (run {best['run_id']}), {best['value']:.4g}: {params}")


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def sweeps_command(args: argparse.Namespace) -> int:
    from core.sweeps.status import list_sweeps

    listed = list_sweeps()
    rows = [
        {
            "sweep_id": s.id,
            "name": s.name,
            "status": s.status,
            "dataset": s.dataset,
            "objective": s.objective,
            "trials": s.max_trials,
            "created": s.created.isoformat(),
        }
        for s in listed
    ]
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no sweeps yet; `studio sweep SPEC.json --dataset NAME --trials N --param ...`")
        return 0
    for row in rows:
        print(f"{row['sweep_id']:>5}  {row['status']:<10} {row['name']}")
    return 0


def sweep_stop_command(args: argparse.Namespace) -> int:
    from core.sweeps.queue import stop_sweep
    from core.sweeps.status import sweep_status

    stop_sweep(args.sweep_id)
    status = sweep_status(args.sweep_id, refresh=False)
    if args.json:
        _print_json(status)
    else:
        print(f"sweep {args.sweep_id}: {status['status']}")
    return 0
