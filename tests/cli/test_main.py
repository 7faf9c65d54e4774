"""The `studio` entry point's error policy: one line and exit 1 for user errors, 2 for usage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "core" / "templates" / "digits-cnn.json"


def studio(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core.cli", *args], cwd=REPO, text=True, timeout=120, **kwargs
    )


def test_a_reader_that_stops_early_gets_no_traceback():
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `studio check ... | head -0`: nobody reads
    finished = studio("check", str(TEMPLATE), "--input-shape", "1,8,8", stdout=write_end,
                      stderr=subprocess.PIPE)  # fmt: skip
    os.close(write_end)
    assert finished.returncode == 0
    assert "Traceback" not in finished.stderr and "BrokenPipe" not in finished.stderr


def test_usage_errors_exit_2_and_user_errors_exit_1_with_one_line():
    usage = studio("check", capture_output=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    missing = studio("check", "no-such-spec.json", "--input-shape", "1,8,8", capture_output=True)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: ")
    assert "no-such-spec.json" in missing.stderr
