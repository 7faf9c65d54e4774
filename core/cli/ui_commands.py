"""`studio ui`: the studio in the browser, plus a local worker when none is alive.

The worker it starts is tied to it: when `studio ui` stops (Ctrl-C, SIGTERM), that worker pauses
its run at a checkpoint, queues it again and exits, so the run resumes when a worker next starts.
`--keep-worker` leaves it running; a worker started by hand is never touched.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path
from types import FrameType

WORKER_STOP_TIMEOUT_S = 120.0  # a step and a checkpoint; past this the worker stops by itself


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `studio ui [--host 127.0.0.1] [--port 8501] [--no-worker | --keep-worker]`."""
    parser = subparsers.add_parser(
        "ui",
        help="the studio in the browser (and a local worker if none is alive)",
        description="Start the studio on http://HOST:PORT and a background worker when no "
        "worker has answered recently. Binds to localhost unless --host says otherwise. "
        "Stopping the studio (Ctrl-C) stops the worker it started: its run is checkpointed "
        "and resumes when a worker next starts.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    workers = parser.add_mutually_exclusive_group()
    workers.add_argument(
        "--no-worker",
        action="store_true",
        help="do not start a local worker (workers run elsewhere)",
    )
    workers.add_argument(
        "--keep-worker",
        action="store_true",
        help="leave the local worker running after the studio stops",
    )
    parser.set_defaults(handler=run_ui)


def config_options(path: Path) -> dict[str, str]:
    """The studio's Streamlit config (.streamlit/config.toml, the one source) as `section.name`
    -> value strings, the form `streamlit run --section.name value` takes."""
    with path.open("rb") as file:
        config = tomllib.load(file)
    options = {}
    for section, values in config.items():
        for name, value in values.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            options[f"{section}.{name}"] = text
    return options


def streamlit_command(host: str, port: int) -> list[str]:
    """The `streamlit run` command line. Every config setting is passed as a flag, because
    Streamlit reads config.toml only from the working directory or ~/.streamlit: flags apply it
    wherever the studio is installed and started, and outrank a stray config.toml there (XSRF
    stays on, the bind stays where --host says). `-P`: a `core/` folder in the working
    directory cannot shadow the studio's own package."""
    from app.locations import ENTRYPOINT, STREAMLIT_CONFIG

    options = config_options(STREAMLIT_CONFIG) | {
        "server.address": host,
        "server.port": str(port),
        "browser.serverAddress": host,
        "server.headless": "true",
    }
    flags = [part for name, value in options.items() for part in (f"--{name}", value)]
    return [sys.executable, "-P", "-m", "streamlit", "run", str(ENTRYPOINT), *flags]


LOOPBACK = ("127.0.0.1", "localhost", "::1")
ACCESS_TOKEN_ENV = "STUDIO_ACCESS_TOKEN"  # read by app/access.py in the Streamlit process


def access_token(host: str, env: dict[str, str]) -> str | None:
    """The token a studio bound to `host` asks for: none on loopback; beyond it, the one in
    STUDIO_ACCESS_TOKEN or a new random one."""
    import secrets

    if host in LOOPBACK:
        return None
    return env.get(ACCESS_TOKEN_ENV) or secrets.token_urlsafe(18)


def _announce(host: str, port: int, token: str | None) -> None:
    if token is None:
        print(f"Model Studio on http://{host}:{port}", file=sys.stderr)
        return
    shown = "<this machine's address>" if host in ("0.0.0.0", "::") else host
    print(
        f"warning: --host {host} shares the studio with every machine that can reach this one "
        "(no TLS: use it on a network you trust, or behind an HTTPS proxy). It asks for an "
        f"access token; open\n  http://{shown}:{port}/?token={token}",
        file=sys.stderr,
    )


class _Stopped(Exception):
    """SIGTERM reached `studio ui`: stop like a Ctrl-C."""


def _raise_stopped(_signum: int, _frame: FrameType | None) -> None:
    raise _Stopped


def run_ui(args: argparse.Namespace) -> int:
    from core.runs.workers import UI_PID_ENV, spawn_local_worker

    tie_worker = not args.keep_worker
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    worker: subprocess.Popen[bytes] | None = None
    streamlit: subprocess.Popen[bytes] | None = None
    code = 0
    try:
        if not args.no_worker:
            worker = spawn_local_worker(stop_with=os.getpid() if tie_worker else None)
            if worker is not None:
                print(f"started a local worker (pid {worker.pid})", file=sys.stderr)
        env = os.environ.copy()
        if tie_worker:  # a worker a page spawns stops with this studio too
            env[UI_PID_ENV] = str(os.getpid())
        else:
            env.pop(UI_PID_ENV, None)
        token = access_token(args.host, env)
        if token is None:
            env.pop(ACCESS_TOKEN_ENV, None)
        else:
            env[ACCESS_TOKEN_ENV] = token
        _announce(args.host, args.port, token)
        streamlit = subprocess.Popen(streamlit_command(args.host, args.port), env=env)
        code = streamlit.wait()
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except _Stopped:
        code = 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM: we are stopping
        if streamlit is not None:
            _end(streamlit)
        if worker is not None and tie_worker:
            _stop_worker(worker)
        signal.signal(signal.SIGTERM, previous)
    return code


def _end(streamlit: subprocess.Popen[bytes]) -> None:
    if streamlit.poll() is None:
        streamlit.terminate()
    try:
        streamlit.wait(timeout=10)
    except subprocess.TimeoutExpired:
        streamlit.kill()
        streamlit.wait()


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """Stop the worker this `studio ui` started; a second Ctrl-C skips the checkpoint (the run
    is still queued again and resumes from its last one)."""
    from core.runs.workers import stop_local_worker

    if worker.poll() is not None:
        return
    print(
        f"stopping the local worker (pid {worker.pid}); a run it trains is checkpointed and "
        "resumes when a worker next starts",
        file=sys.stderr,
    )
    try:
        code = stop_local_worker(worker, timeout_s=WORKER_STOP_TIMEOUT_S)
    except KeyboardInterrupt:
        worker.send_signal(signal.SIGINT)
        code = stop_local_worker(worker, timeout_s=10)
    if code is None:
        print(
            f"the worker (pid {worker.pid}) is still finishing; it stops by itself", file=sys.stderr
        )
