"""AppTest helpers: the real entrypoint, its real pages, this test's own STUDIO_HOME."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import state
from tests import polling

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "app" / "main.py"


def open_app(page: str | None = None, *, query_params: dict | None = None) -> AppTest:
    """The studio as a person opens it, then (optionally) switched to `page` ("train", ...)."""
    at = AppTest.from_file(str(ENTRYPOINT), default_timeout=60)
    if query_params and page is None:
        at.query_params.update(query_params)
    at.run()
    assert not at.exception, at.exception
    if page is not None:
        if query_params:
            at.query_params.update(query_params)
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, at.exception
    return at


def add_blocks(at: AppTest, *layer_types: str) -> AppTest:
    for layer_type in layer_types:
        at.sidebar.button(key=f"palette.{layer_type}").click().run()
        assert not at.exception, at.exception
    return at


def blocks(at: AppTest) -> list:
    return at.session_state[state.DRAFT].blocks


wait_for = functools.partial(polling.wait_for, every=0.3)  # each check reruns a page


@pytest.fixture
def worker(studio_home: Path) -> Iterator[subprocess.Popen]:
    """A real `studio worker` subprocess on this test's STUDIO_HOME, stopped afterwards."""
    log = open(studio_home / "worker-test.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "worker"],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
