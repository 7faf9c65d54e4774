"""The studio as a person runs it: `studio ui` in a subprocess, Debian's Chromium via Playwright."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"`studio ui` exited with code {process.returncode} before serving")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the studio did not answer on {url} within {timeout:.0f} s")


def stop_workers_of_this_home() -> None:
    """The worker `studio ui` spawned runs detached; stop it (and only it) by its pid."""
    from core.runs import list_workers

    pids = {w.pid for w in list_workers(include_dead=True) if w.host == socket.gethostname()}
    pids.discard(os.getpid())
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 30
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)


@pytest.fixture
def studio(studio_home: Path) -> Iterator[str]:
    """`studio ui` on a free port with this test's STUDIO_HOME; yields its base URL."""
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is missing: `make browser` installs Debian's Chromium"
        if os.environ.get("CI"):  # CI must run the browser test, never skip it quietly
            pytest.fail(missing)
        pytest.skip(missing)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(studio_home / "ui.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "ui", "--port", str(port)],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_up(url, process, timeout=90)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stop_workers_of_this_home()
        log.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Remember a failed test body so the page fixture can keep a screenshot of it."""
    report = yield
    if report.when == "call" and report.failed:
        item.call_failed = True
    return report


@pytest.fixture
def browser_page(studio: str, request: pytest.FixtureRequest):
    """A Chromium page at a desktop size; screenshots go to tests/artifacts/."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(60_000)
        try:
            yield page
            if getattr(request.node, "call_failed", False):
                page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
        finally:
            browser.close()
