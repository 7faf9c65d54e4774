"""The standalone file serves a bundle with nothing of the studio (nor torch) importable; dead
local servers are forgotten (starting, listing and stopping one: tests/pages/test_deploy_page.py)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from core.cli.main import main
from core.serve import processes, standalone
from core.serve.standalone import CONTRACT_FILE, MODEL_FILE
from tests import polling

ALLOWED = {"numpy", "fastapi", "onnxruntime", "PIL", "uvicorn"}
# runs serve.py as `python serve.py` would, with the studio and torch made unimportable
RUN_ALONE = """
import importlib.abc, runpy, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("core", "app", "torch", "tests"):
            raise ImportError(f"serve.py must not import {name}")
sys.meta_path.insert(0, Refuse())
sys.argv = ["serve.py", *sys.argv[1:]]
runpy.run_path("serve.py", run_name="__main__")
"""


def post(url: str, body: dict, key: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, json.dumps(body).encode(), headers)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        return json.loads(response.read())


def test_the_standalone_file_imports_only_what_a_bundle_needs():
    tree = ast.parse(Path(standalone.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names - {"__future__"} <= ALLOWED


def test_the_standalone_file_serves_a_bundle_alone_in_a_subprocess(served, tmp_path):
    run = served["digits"]
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for name in (CONTRACT_FILE, MODEL_FILE):
        shutil.copy(run.folder / name, bundle / name)
    shutil.copy(standalone.__file__, bundle / "serve.py")  # as the bundle export copies it
    port = processes.free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["STUDIO_API_KEY"] = "k3y"
    process = subprocess.Popen(
        [sys.executable, "-I", "-c", RUN_ALONE, "--port", str(port)],
        cwd=bundle,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        polling.wait_for(
            lambda: process.poll() is not None or processes.answers_health(url, key="k3y"),
            timeout=60,
            what="the standalone server to answer /health",
        )
        assert process.poll() is None, process.stdout.read().decode()
        answer = post(f"{url}/predict", {"inputs": run.raw[:3]}, key="k3y")
        assert [p["index"] for p in answer["predictions"]] == [
            int(row.argmax()) for row in run.outputs[:3]
        ]
        assert not processes.answers_health(url)  # no key, no answer
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_entries_of_dead_servers_are_removed(studio_home):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = processes.registry_dir()
    folder.mkdir(parents=True)
    entry = {"pid": dead.pid, "host": "127.0.0.1", "port": 1, "target": "3", "run_id": 3}
    entry |= {"runtime": "onnx", "started": "2026-01-01T00:00:00+00:00"}
    (folder / f"{dead.pid}.json").write_text(json.dumps(entry))
    (folder / "garbage.json").write_text("{")
    assert processes.list_servers() == []
    assert list(folder.iterdir()) == []


def test_cli_refuses_what_it_cannot_serve(tmp_path, capsys):
    assert main(["serve", "999"]) == 1
    assert "run 999 does not exist" in capsys.readouterr().err
    assert main(["serve", str(tmp_path)]) == 1
    assert "neither a run id nor a bundle folder" in capsys.readouterr().err
    assert main(["servers", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["servers", "--stop", "123456"]) == 1
    assert "no local server has pid 123456" in capsys.readouterr().err
