"""Workers: who is alive, and spawning (and stopping) a local one for `studio ui`."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from core.config import get_settings
from core.runs.views import WorkerView
from core.states import WorkerStatus
from core.store import db
from core.store import repository as repo
from core.store.models import utcnow


def list_workers(*, include_dead: bool = False) -> list[WorkerView]:
    """Workers with their device and whether their heartbeat is fresh."""
    cutoff = utcnow() - timedelta(seconds=get_settings().stale_after_s)
    views = []
    for row, run_id in db.call(repo.list_workers, readonly=True):
        alive = row.heartbeat >= cutoff and row.status not in (
            WorkerStatus.STOPPED,
            WorkerStatus.LOST,
        )
        if alive or include_dead:
            views.append(
                WorkerView(
                    row.id,
                    row.host,
                    row.pid,
                    row.device,
                    row.status,
                    row.started,
                    row.heartbeat,
                    alive,
                    run_id,
                )
            )
    return views


def workers_able(settings: Mapping[str, Any]) -> list[WorkerView]:
    """The live workers whose machine can train a run with `settings` (device, processes):
    the ones that will claim it (core.train.distributed.Capacity)."""
    from core.train.distributed import Capacity

    return [w for w in list_workers() if Capacity.from_label(w.device).can_run(settings)]


# Set by `studio ui` in Streamlit's environment: a worker spawned from a page (the Train page's
# "Start a local worker") then stops with that `studio ui`, like the one it started itself.
UI_PID_ENV = "STUDIO_UI_PID"


def ensure_local_worker(*, stop_with: int | None = None) -> bool:
    """Spawn a detached `studio worker` unless a worker heartbeat is fresh; True if spawned.

    stop_with: a process id whose end stops the worker (default: the `studio ui` named by
    $STUDIO_UI_PID, if any)."""
    if stop_with is None and os.environ.get(UI_PID_ENV, "").isdigit():
        stop_with = int(os.environ[UI_PID_ENV])
    return spawn_local_worker(stop_with=stop_with) is not None


def spawn_local_worker(*, stop_with: int | None = None) -> subprocess.Popen[bytes] | None:
    """Spawn a `studio worker` in its own session unless a worker heartbeat is fresh; returns
    the process, or None when a worker is alive (or was spawned moments ago).

    A marker file stops a burst of callers (Streamlit reruns) from spawning several workers
    before the first one has had time to heartbeat. `python -P -m core.cli` runs the installed
    (or editable) studio from any working directory: -P keeps a `core/` folder in the cwd from
    shadowing the package."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_s)
    if db.call(repo.fresh_worker_count, fresh_after=cutoff, readonly=True):
        return None
    settings.home.mkdir(parents=True, exist_ok=True)
    marker = settings.home / "worker.spawned"
    command = [sys.executable, "-P", "-m", "core.cli", "worker"]
    if stop_with is not None:
        command += ["--stop-with", str(stop_with)]
    with open(settings.home / "worker.spawn.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and time.time() - marker.stat().st_mtime < settings.stale_after_s:
            return None
        log_dir = settings.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "worker.log", "ab") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # a Ctrl-C in the UI's terminal does not reach it
                env=os.environ.copy(),
            )
        marker.touch()
    return process


def stop_local_worker(process: subprocess.Popen[bytes], *, timeout_s: float) -> int | None:
    """SIGTERM a worker this process spawned and wait for it: it finishes its step, checkpoints
    its run and queues it again, so the run resumes when a worker next starts. Returns the exit
    code, or None when it is still finishing at the deadline (it stops by itself later)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return None
