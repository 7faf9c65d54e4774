"""`studio ui`: the studio in the browser, plus a local worker when none is alive."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENTRYPOINT = REPO / "app" / "main.py"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `studio ui [--host 127.0.0.1] [--port 8501]`."""
    parser = subparsers.add_parser(
        "ui",
        help="the studio in the browser (and a local worker if none is alive)",
        description="Start the studio on http://HOST:PORT and a background worker when no "
        "worker has answered recently. Binds to localhost unless --host says otherwise.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="do not start a local worker (workers run elsewhere)",
    )
    parser.set_defaults(handler=run_ui)


def streamlit_command(host: str, port: int) -> list[str]:
    """The `streamlit run` command line; the repo's .streamlit/config.toml supplies the rest
    (XSRF on, upload limit, theme), because Streamlit reads it from the working directory."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ENTRYPOINT),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.serverAddress",
        host,
        "--server.headless",
        "true",
    ]


def run_ui(args: argparse.Namespace) -> int:
    from core.runs import ensure_local_worker

    if not args.no_worker and ensure_local_worker():
        print("started a local worker", file=sys.stderr)
    print(f"Model Studio on http://{args.host}:{args.port}", file=sys.stderr)
    process = subprocess.Popen(streamlit_command(args.host, args.port), cwd=REPO, env=os.environ)

    def forward(signum: int, _frame: object) -> None:  # a terminated `studio ui` ends Streamlit
        process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        return 130
