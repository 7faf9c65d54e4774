"""`studio serve RUN_ID|BUNDLE_DIR` and `studio servers`: a run over HTTP, and the local servers."""

from __future__ import annotations

import argparse
import json
import socket
import sys

from core.errors import StudioError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `studio serve` and `studio servers`."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a trained run (or an exported bundle) over HTTP",
        description="Serve predictions and explanations over HTTP (FastAPI on uvicorn): "
        "GET /health, GET /metadata, POST /predict, POST /explain, docs at /docs. A run is "
        "exported to ONNX once (parity-checked) and served with onnxruntime, or with PyTorch "
        "(--runtime torch); only ONNX and safetensors files are loaded. With STUDIO_API_KEY set, "
        "every request needs 'Authorization: Bearer <key>'.",
    )
    parser.add_argument("target", metavar="RUN_ID|BUNDLE_DIR")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--runtime", choices=("onnx", "torch"), default="onnx")
    parser.set_defaults(handler=run_serve)

    servers = subparsers.add_parser(
        "servers",
        help="list (or stop) the local `studio serve` processes",
        description="The `studio serve` processes running on this machine for this STUDIO_HOME, "
        "with their addresses; --stop PID stops one.",
    )
    servers.add_argument("--stop", type=int, metavar="PID", help="stop the server with this pid")
    servers.add_argument("--json", action="store_true", help="print a JSON list")
    servers.set_defaults(handler=run_servers)


def check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise StudioError(
                f"cannot listen on {host}:{port} ({error.strerror}); pick another with --port"
            ) from None


def run_serve(args: argparse.Namespace) -> int:
    import os

    import uvicorn

    from core.config import get_settings
    from core.serve import processes
    from core.serve.server import create_studio_app

    if not 0 < args.port < 65536:
        raise StudioError(f"--port {args.port} is out of range; use 1 to 65535")
    check_port_free(args.host, args.port)
    if args.host not in LOOPBACK and not get_settings().api_key:
        print(
            f"warning: serving on {args.host} without STUDIO_API_KEY: anyone who can reach this "
            "machine can call the model",
            file=sys.stderr,
        )
    print(f"preparing {args.target} ...", file=sys.stderr, flush=True)
    app = create_studio_app(args.target, runtime=args.runtime)
    processes.register(
        host=args.host,
        port=args.port,
        target=args.target,
        runtime=args.runtime,
        log=os.environ.get("STUDIO_SERVE_LOG"),
    )
    url = processes.ServerView(0, args.host, args.port, args.target, None, "", "").url
    print(f"serving {args.target} ({args.runtime}) on {url}  docs: {url}/docs", file=sys.stderr)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        processes.unregister()
    return 0


def run_servers(args: argparse.Namespace) -> int:
    from core.serve import processes

    if args.stop is not None:
        processes.stop_server(args.stop)
        print(f"stopped the server with pid {args.stop}", file=sys.stderr)
    views = processes.list_servers()
    if args.json:
        json.dump([view.to_dict() for view in views], sys.stdout)
        sys.stdout.write("\n")
        return 0
    if not views:
        print("no local servers; start one with `studio serve RUN_ID`")
        return 0
    for view in views:
        run = f"run {view.run_id}" if view.run_id is not None else view.target
        print(f"{view.pid:>7}  {view.url:<28} {run:<12} {view.runtime:<6} since {view.started}")
    return 0
