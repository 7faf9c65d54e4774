"""Submitting runs: settings and spec checked once against the dataset, then queued for the
workers or trained here in the foreground (`studio train`)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core import metric_catalog as catalog
from core.config import get_settings
from core.errors import SettingsError
from core.runs.reading import get_run
from core.runs.views import RunView
from core.runs.workers import list_workers
from core.states import RunStatus, WorkerStatus
from core.store import db
from core.store import repository as repo

if TYPE_CHECKING:
    from core.builder import Trace
    from core.facts import ModelFacts
    from core.train.config import TrainConfig

# progress(step, total_steps, latest_metrics) — called from the training thread, throttled by
# the caller (the CLI's ProgressBar redraws at most every 0.2 s).
ProgressFn = Callable[[int, int, dict[str, float]], None]


# the keys `studio train --json` always carries under "metrics" (null when not recorded)
TRAIN_JSON_METRICS = catalog.SUMMARY


def check_launch(spec: dict, facts: ModelFacts, *, checked: Trace | None = None) -> Trace:
    """The spec traced against the data's facts as strictly as training needs (the trace a
    launch builds its model from); raises the builder's SpecError. `checked`, a trace of this
    same spec for these same facts made earlier (the Train page's fit check), is returned
    instead of tracing again: one trace per launch."""
    from core.builder import check_model
    from core.spec import validate_spec

    if (
        checked is not None
        and checked.ok
        and checked.finished
        and checked.facts == facts
        and checked.spec == validate_spec(spec)  # no shapes: a fraction of a trace's cost
    ):
        return checked
    return check_model(spec, facts, finished=True)


def _spec_name(spec: dict, spec_name: str | None) -> str | None:
    name = spec_name or (spec.get("name") if isinstance(spec, dict) else None)
    return str(name) if name else None


def submit_run(
    *,
    spec: dict,
    dataset: str,
    config: TrainConfig | dict | None = None,
    spec_name: str | None = None,
    checked: Trace | None = None,
    parent_run_id: int | None = None,
    origin: dict | None = None,
) -> int:
    """Validate settings and spec against the dataset, then queue the run; nothing is queued on
    error (SettingsError, SpecError, DataError). `checked`: see `check_launch`. `parent_run_id`
    and `origin` record the run it starts from and how (see `check_lineage`)."""
    from core.data import describe_dataset
    from core.train import TrainConfig

    info = describe_dataset(dataset)
    settings = TrainConfig.checked(
        config,
        train_size=info.sizes.get("train"),
        task=info.task,
        has_validation=info.sizes.get("val", 1) > 0,
        check_device=False,
    )
    _check_device_somewhere(settings.device)
    _check_capacity_somewhere(settings.to_dict())
    check_launch(spec, info.facts, checked=checked)
    check_lineage(parent_run_id, origin)
    run = db.call(
        repo.create_run,
        spec=spec,
        dataset=dataset,
        settings=settings.to_dict(),
        spec_name=_spec_name(spec, spec_name),
        parent_run_id=parent_run_id,
        origin=origin,
    )
    return run.id


def check_lineage(parent_run_id: int | None, origin: dict | None) -> None:
    """The parent must exist and `origin` must say how the run came from it: a JSON-able dict
    with a "kind" (e.g. "init-from", "compress", "sweep"); SettingsError otherwise."""
    import json

    if parent_run_id is not None:
        get_run(parent_run_id)  # NotFoundError naming the run
    if origin is None:
        return
    if not isinstance(origin, dict) or not isinstance(origin.get("kind"), str):
        raise SettingsError(
            f'origin must be a dict with a "kind" string, e.g. {{"kind": "init-from"}}; '
            f"got {origin!r:.80}"
        )
    try:
        json.dumps(origin)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"origin must be JSON-serialisable: {error}") from None


def _check_device_somewhere(device: str) -> None:
    """A queued run may ask for a device that this machine lacks when a live worker has it
    (workers on GPU machines share the database); otherwise it is refused before queueing."""
    from core.train.devices import resolve_device

    try:
        resolve_device(device)
    except SettingsError as error:
        workers = [w.device for w in list_workers() if w.device]
        if any(
            label == device or label.startswith(f"{device}:") or label.startswith(f"{device} ")
            for label in workers
        ):
            return
        seen = "; live workers have: " + ", ".join(workers) if workers else "; no worker is alive"
        raise SettingsError(f"{error}{seen}") from None


def _check_capacity_somewhere(settings: dict[str, Any]) -> None:
    """A run needing several GPUs is queued only when this machine or a live worker has them."""
    from core.train.distributed import Capacity

    lacking = Capacity.of_machine().why_not(settings)
    if lacking is None:
        return
    workers = [w.device for w in list_workers() if w.device]
    if any(Capacity.from_label(label).can_run(settings) for label in workers):
        return
    seen = "live workers have: " + ", ".join(workers) if workers else "no worker is alive"
    raise SettingsError(
        f"no machine can train this run: {lacking} (processes={settings.get('processes', 1)}, "
        f"device {settings.get('device')!r}); {seen}"
    )


def train_run_foreground(
    *,
    spec: dict,
    dataset: str,
    config: TrainConfig | dict | None = None,
    spec_name: str | None = None,
    progress: ProgressFn | None = None,
    interrupted: threading.Event | None = None,
    parent_run_id: int | None = None,
    origin: dict | None = None,
) -> dict:
    """Record a run and train it in this process through the worker's own code; returns the
    `studio train --json` result dict. Setting `interrupted` pauses the run at the next step
    (checkpointed; `request_resume` hands it to a worker)."""
    from core import worker
    from core.data import load_dataset
    from core.train import TrainConfig

    data = load_dataset(dataset)
    settings = TrainConfig.checked(
        config,
        train_size=len(data.train),
        task=data.task,
        has_validation=len(data.val) > 0,
    )
    checked = check_launch(spec, data.facts)
    check_lineage(parent_run_id, origin)
    worker_id = worker.new_worker_id("foreground")
    db.call(
        repo.register_worker,
        worker_id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        device=None,
        status=WorkerStatus.FOREGROUND,
    )
    try:
        run = db.call(
            repo.create_run,
            spec=spec,
            dataset=dataset,
            settings=settings.to_dict(),
            spec_name=_spec_name(spec, spec_name),
            status=RunStatus.RUNNING,
            worker_id=worker_id,
            parent_run_id=parent_run_id,
            origin=origin,
        )
        with worker.Heartbeat(worker_id, interval_s=get_settings().heartbeat_s):
            worker.execute_run(
                run.id,
                worker_id=worker_id,
                interrupted=interrupted,
                progress=progress,
                dataset=data,
                release_status=RunStatus.PAUSED,
                checked=checked,
            )
    finally:
        db.call(repo.set_worker_status, worker_id=worker_id, status=WorkerStatus.STOPPED)
    return run_result(get_run(run.id))


def run_result(run: RunView) -> dict[str, Any]:
    """The `studio train --json` shape for a run (final metrics once it has finished)."""
    result = run.result or {}
    metrics = dict(result.get("metrics") or {})
    for name in TRAIN_JSON_METRICS:
        metrics.setdefault(name, None)
    return {
        "run_id": run.id,
        "status": run.status,
        "epochs": result.get("epochs", run.epoch),
        "steps": result.get("steps", run.step),
        "duration_s": result.get("duration_s"),
        "samples_per_s": result.get("samples_per_s"),
        "metrics": metrics,
        "error": run.error,
        "device": run.device,
        "confusion_matrix": result.get("confusion_matrix"),
        **({"init": result["init"]} if result.get("init") else {}),  # started from weights
    }
