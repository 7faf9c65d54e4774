"""Local `studio serve` processes: started and stopped from the Deploy page or the CLI, they
outlive the page that started them and are listed from a small registry under STUDIO_HOME
(one JSON file per server: pid, address, what it serves). Entries of dead processes are removed
whenever the list is read.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.config import get_settings
from core.serve.server import ServeError, run_id_of

CHECKOUT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180.0  # first start of a run exports it (ONNX + parity check) before binding
STOP_TIMEOUT_S = 10.0
_CHILDREN: dict[int, subprocess.Popen] = {}  # started by this process: reaped when they end


@dataclass(frozen=True)
class ServerView:
    """One local server as the registry holds it."""

    pid: int
    host: str
    port: int
    target: str  # the RUN_ID or BUNDLE_DIR it was started with
    run_id: int | None
    runtime: str
    started: str  # ISO time, UTC
    log: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else host
        return f"http://{shown}:{self.port}"

    def to_dict(self) -> dict:
        return {**asdict(self), "url": self.url}


def registry_dir() -> Path:
    return get_settings().home / "servers"


def _entry(pid: int) -> Path:
    return registry_dir() / f"{pid}.json"


def register(*, host: str, port: int, target: str, runtime: str, log: str | None = None) -> Path:
    """Called by a `studio serve` process about itself, just before it binds."""
    view = ServerView(
        pid=os.getpid(),
        host=host,
        port=port,
        target=str(target),
        run_id=run_id_of(target),
        runtime=runtime,
        started=datetime.now(UTC).isoformat(timespec="seconds"),
        log=log,
    )
    path = _entry(view.pid)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".partial")
    temporary.write_text(json.dumps(asdict(view)), encoding="utf-8")
    temporary.replace(path)
    return path


def unregister(pid: int | None = None) -> None:
    _entry(os.getpid() if pid is None else pid).unlink(missing_ok=True)


def is_alive(pid: int) -> bool:
    """Whether `pid` is a running process (a finished child of ours is reaped, not counted)."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process holds the pid: not ours, but alive
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        if stat.read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False  # a zombie: finished, waiting for its parent
    return True


def list_servers() -> list[ServerView]:
    """Local servers that are alive, oldest first; entries of dead ones are removed."""
    views = []
    for path in sorted(registry_dir().glob("*.json")):
        try:
            view = ServerView(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            path.unlink(missing_ok=True)
            continue
        if is_alive(view.pid):
            views.append(view)
        else:
            path.unlink(missing_ok=True)
    return sorted(views, key=lambda v: v.started)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def answers_health(url: str, *, timeout_s: float = 1.0, key: str | None = None) -> bool:
    """Whether a server answers GET /health (with `key`, default STUDIO_API_KEY)."""
    headers = {}
    key = key or get_settings().api_key
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(f"{url}/health", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (loopback)
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def start_server(
    target: str | int,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    runtime: str = "onnx",
    timeout_s: float = START_TIMEOUT_S,
) -> ServerView:
    """Start `studio serve TARGET` as its own process (its own session: it survives the page
    and the terminal that started it) and wait until it answers /health."""
    port = port or free_port(host)
    logs = get_settings().logs_dir
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"serve-{port}.log"
    command = [sys.executable, "-m", "core.cli", "serve", str(target)]
    command += ["--host", host, "--port", str(port), "--runtime", runtime]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=CHECKOUT,
            env={**os.environ, "STUDIO_SERVE_LOG": str(log_path)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _CHILDREN[process.pid] = process
    url = ServerView(process.pid, host, port, str(target), None, runtime, "").url
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _CHILDREN.pop(process.pid, None)
            raise ServeError(
                f"the server for {target} stopped before answering: {_log_tail(log_path)} "
                f"(log: {log_path})"
            )
        if answers_health(url):
            for view in list_servers():
                if view.pid == process.pid:
                    return view
        time.sleep(0.2)
    stop_server(process.pid)
    raise ServeError(
        f"the server for {target} did not answer within {timeout_s:.0f} s (log: {log_path})"
    )


def stop_server(pid: int, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
    """Stop a listed server (SIGTERM, then SIGKILL after `timeout_s`) and drop its entry."""
    known = {view.pid for view in list_servers()}
    if pid not in known and pid not in _CHILDREN:
        listed = ", ".join(str(p) for p in sorted(known)) or "none"
        raise ServeError(f"no local server has pid {pid}; running: {listed}")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=timeout_s)
    unregister(pid)
