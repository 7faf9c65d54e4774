"""`studio worker` subprocesses for tests: quick polling, a fast heartbeat, stderr in a file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# stale after 25 missed beats: a busy CPU or a held database lock can delay a live worker's
# beats by seconds, and it must not be taken for dead
FAST_BEATS = {"STUDIO_HEARTBEAT_S": "0.2", "STUDIO_STALE_AFTER_S": "5"}


def spawn_worker(log: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """`studio worker --poll 0.05 ARGS` with this test's STUDIO_HOME and database (the autouse
    fixture's environment), FAST_BEATS, then `env` on top."""
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker", "--poll", "0.05", *args],
        cwd=REPO,
        env=os.environ | FAST_BEATS | (env or {}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
