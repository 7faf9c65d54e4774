"""The studio as users install it: `pip install .` (not editable) from a clean copy of the tree,
into a fresh venv, then `studio ui` from another directory really serves the studio's pages."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from core import runs
from core.worker import process_alive
from tests.conftest import REPO
from tests.polling import wait_for
from tests.studio_ui import StudioUI, get, listening_addresses

pytestmark = pytest.mark.slow

IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "artifacts"
)


def clean_copy(target: Path) -> Path:
    """The tree as a clone of it would be (tracked and new files, nothing git ignores), so the
    build sees no egg-info, build/ or venv left behind by development."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
    )
    if listed.returncode != 0:  # not a git checkout (an unpacked sdist): copy, minus the junk
        shutil.copytree(REPO, target, ignore=IGNORED)
        return target
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a file deleted in the tree but still in the index is skipped
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = clean_copy(work / "src")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
        + ["--quiet", "--wheel-dir", str(work / "dist"), str(source)],
        check=True,
    )
    [built] = (work / "dist").glob("model_studio-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel (installed without its dependencies, which it finds in
    this venv's site-packages through a .pth line: torch is not installed twice). The line is
    a plain path, so this venv's editable-install hook does not run there."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "project-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    return venv


def test_the_wheel_carries_every_package_the_pages_and_the_streamlit_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(
        str(init.parent.relative_to(REPO))
        for top in ("app", "core")
        for init in (REPO / top).rglob("__init__.py")
    )
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert missing == [], f"add {missing} to [tool.setuptools] packages in pyproject.toml"
    pages = sorted(p.name for p in (REPO / "pages").glob("*.py"))
    assert pages and all(f"app/studio_pages/{page}" in names for page in pages)
    assert "app/streamlit_config/config.toml" in names
    assert "core/store/migrations/env.py" in names


def test_installed_studio_ui_serves_its_pages_from_another_directory(installed, tmp_path):
    elsewhere = tmp_path / "elsewhere"  # with a hostile config the studio must not pick up
    (elsewhere / ".streamlit").mkdir(parents=True)
    (elsewhere / ".streamlit" / "config.toml").write_text(
        '[server]\naddress = "0.0.0.0"\nenableXsrfProtection = false\n'
    )
    (elsewhere / "core").mkdir()  # nor a folder that shadows the studio's package
    (elsewhere / "core" / "__init__.py").write_text("raise ImportError('the wrong core')\n")
    ui = StudioUI(
        installed / "bin" / "studio",
        cwd=elsewhere,
        log=tmp_path / "ui.log",
        # Streamlit's own check that the entrypoint and its default page run without an error
        env={"STREAMLIT_SERVER_SCRIPT_HEALTH_CHECK_ENABLED": "true"},
    )
    try:
        health = ui.wait_until_serving(timeout=180)
        assert "_streamlit_xsrf=" in health.headers.get("set-cookie", ""), "XSRF is off"
        assert listening_addresses(ui.port) == {"127.0.0.1"}

        index = get(ui.url("/"))
        assert index is not None and index.status == 200 and "<!doctype html>" in index.body.lower()
        script = get(ui.url("/_stcore/script-health-check"), timeout=120)
        assert script is not None and (script.status, script.body) == (200, "ok"), ui.output()

        [worker] = wait_for(runs.list_workers, timeout=120, what="the worker studio ui started")
        command = Path(f"/proc/{worker.pid}/cmdline").read_bytes().split(b"\0")
        assert command[0].decode().startswith(str(installed)), command  # the installed studio
        assert ui.stop(timeout=90) == 128 + signal.SIGTERM, ui.output()
        assert not process_alive(worker.pid)
    finally:
        ui.kill()
        for worker in runs.list_workers(include_dead=True):
            if process_alive(worker.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)
