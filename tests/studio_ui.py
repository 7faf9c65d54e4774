"""A real `studio ui` process for tests: started from a directory the test picks, on a free
port, its output in a log file; and the HTTP / socket checks that say it really serves."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.polling import wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: str


def get(url: str, *, timeout: float = 30) -> Response | None:
    """GET `url`; None while nothing answers (the server is still starting)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            headers = {k.lower(): v for k, v in answer.headers.items()}
            return Response(answer.status, headers, answer.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers.items()), error.read().decode())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def listening_addresses(port: int) -> set[str]:
    """The local addresses a TCP socket listens on at `port` (Linux /proc/net/tcp{,6})."""
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state != "0A" or int(hex_port, 16) != port:  # 0A: LISTEN
                    continue
                raw = bytes.fromhex(address)  # 32-bit words in host (little-endian) order
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(words[:width])))
    return found


class StudioUI:
    """`studio ui --port <free>` run by the `studio` script given, from `cwd`."""

    def __init__(
        self, studio: Path, *args: str, cwd: Path, log: Path, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.log = log
        environment = os.environ.copy()  # STUDIO_HOME / STUDIO_DATABASE_URL of the test
        environment.pop("PYTHONPATH", None)
        environment.update(STUDIO_HEARTBEAT_S="0.2", STUDIO_STALE_AFTER_S="5", **(env or {}))
        self.process = subprocess.Popen(
            [str(studio), "ui", "--port", str(self.port), *args],
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_until_serving(self, *, timeout: float) -> Response:
        """Poll Streamlit's health endpoint until it says ok; the last answer."""

        def healthy() -> Response | None:
            if self.process.poll() is not None:
                pytest.fail(f"studio ui exited with {self.process.returncode}:\n{self.output()}")
            answer = get(self.url("/_stcore/health"), timeout=5)
            return answer if answer is not None and answer.body == "ok" else None

        return wait_for(healthy, timeout=timeout, what="studio ui to serve", every=0.25)

    def stop(self, *, timeout: float) -> int:
        """SIGTERM, as a service manager stops it; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"studio ui still running {timeout} s after SIGTERM:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
