"""Workers: who is alive, and spawning a local one for `studio ui`."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from core.config import get_settings
from core.runs.views import WorkerView
from core.store import db
from core.store import repository as repo
from core.store.models import utcnow

if TYPE_CHECKING:
    pass


def list_workers(*, include_dead: bool = False) -> list[WorkerView]:
    """Workers with their device and whether their heartbeat is fresh."""
    cutoff = utcnow() - timedelta(seconds=get_settings().stale_after_s)
    views = []
    for row, run_id in db.call(repo.list_workers, readonly=True):
        alive = row.heartbeat >= cutoff and row.status not in ("stopped", "lost")
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


def ensure_local_worker() -> bool:
    """Spawn a detached `studio worker` unless a worker heartbeat is fresh; True if spawned.

    A marker file stops a burst of callers (Streamlit reruns) from spawning several workers
    before the first one has had time to heartbeat."""
    settings = get_settings()
    cutoff = utcnow() - timedelta(seconds=settings.stale_after_s)
    if db.call(repo.fresh_worker_count, fresh_after=cutoff, readonly=True):
        return False
    settings.home.mkdir(parents=True, exist_ok=True)
    marker = settings.home / "worker.spawned"
    with open(settings.home / "worker.spawn.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and time.time() - marker.stat().st_mtime < settings.stale_after_s:
            return False
        log_dir = settings.home / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "worker.log", "ab") as log_file:
            subprocess.Popen(
                [sys.executable, "-m", "core.cli", "worker"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # survives the UI; a Ctrl-C there does not reach it
                cwd=Path(__file__).resolve().parents[2],
                env=os.environ.copy(),
            )
        marker.touch()
    return True
