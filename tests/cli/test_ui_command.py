"""`studio ui`: the Streamlit command it runs, and the worker it starts and stops with it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from core import runs
from core.cli.main import main as studio
from core.cli.ui_commands import config_options, streamlit_command
from core.worker import process_alive
from tests.conftest import REPO
from tests.polling import wait_for
from tests.specs import NARROW_DIGITS_CNN
from tests.studio_ui import StudioUI
from tests.worker_process import spawn_worker

STUDIO = Path(sys.executable).with_name("studio")  # the console script, as a person runs it


def flags(command: list[str]) -> dict[str, str]:
    start = command.index("run") + 2  # after `run ENTRYPOINT`
    return dict(zip(command[start::2], command[start + 1 :: 2], strict=True))


def test_every_setting_of_the_repo_config_becomes_a_flag_and_host_port_win():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    options = config_options(REPO / ".streamlit" / "config.toml")
    assert set(options) == {f"{s}.{name}" for s, values in config.items() for name in values}
    assert options["server.enableXsrfProtection"] == "true"

    command = streamlit_command("0.0.0.0", 9123)
    assert command[:3] == [sys.executable, "-P", "-m"]  # a cwd `core/` cannot shadow the studio
    given = flags(command)
    assert given["--server.address"] == "0.0.0.0" and given["--server.port"] == "9123"
    assert given["--server.enableXsrfProtection"] == "true"
    assert given["--theme.primaryColor"] == config["theme"]["primaryColor"]


def test_keep_worker_and_no_worker_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exit_info:
        studio(["ui", "--no-worker", "--keep-worker"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def hand_worker(log: Path) -> subprocess.Popen:
    return spawn_worker(log)


def kill_workers() -> None:
    """Spawned workers are detached: never leave one behind."""
    for worker in runs.list_workers(include_dead=True):
        if process_alive(worker.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)


@pytest.mark.slow
def test_stopping_studio_ui_pauses_its_worker_s_run_and_the_next_worker_resumes_it(tmp_path):
    # far longer than the test lasts, so the stop lands mid-run on any machine; the next worker's
    # resume is then checked step by step and stopped, not waited out
    config = {"epochs": 200, "batch_size": 16, "device": "cpu", "seed": 1, "log_every": 5}
    run_id = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=config)
    ui = StudioUI(STUDIO, cwd=tmp_path, log=tmp_path / "ui.log")
    try:
        wait_for(lambda: runs.get_run(run_id).step > 0, timeout=180, what="training to start")
        [worker] = runs.list_workers()
        assert ui.stop(timeout=150) == 128 + signal.SIGTERM, ui.output()

        assert not process_alive(worker.pid), "the worker studio ui started outlived it"
        paused = runs.get_run(run_id)
        assert paused.status == "queued", f"{paused.status}: {paused.error}"
        assert paused.worker_id is None and 0 < paused.step < paused.total_steps
        assert runs.list_checkpoints(run_id)[-1].step == paused.step  # nothing lost
        assert "stopping the local worker" in ui.output()

        next_worker = hand_worker(tmp_path / "next-worker.log")
        wait_for(
            lambda: runs.get_run(run_id).step > paused.step + 20,
            timeout=180,
            what="the next worker to carry the run on",
        )
        resumed = runs.get_run(run_id)
        assert (resumed.status, resumed.attempts) == ("running", 2)  # resumed, not started over
        steps = [m.step for m in runs.metrics_since(run_id, names=["train_loss"])]
        assert steps == sorted(set(steps)) and steps[0] < paused.step < steps[-1]
        runs.request_stop(run_id)
        wait_for(lambda: runs.get_run(run_id).status == "cancelled", timeout=60, what="the stop")
        next_worker.send_signal(signal.SIGTERM)
        assert next_worker.wait(timeout=60) == 0
    finally:
        ui.kill()
        kill_workers()


@pytest.mark.slow
def test_a_worker_started_by_hand_outlives_studio_ui_and_keep_worker_keeps_its_own(tmp_path):
    by_hand = hand_worker(tmp_path / "hand.log")
    try:
        wait_for(runs.list_workers, timeout=120, what="the hand-started worker's heartbeat")
        ui = StudioUI(STUDIO, cwd=tmp_path, log=tmp_path / "ui.log")
        ui.wait_until_serving(timeout=120)
        assert "started a local worker" not in ui.output()  # one is alive already
        assert ui.stop(timeout=60) == 128 + signal.SIGTERM
        assert by_hand.poll() is None, "studio ui stopped a worker it did not start"
        by_hand.send_signal(signal.SIGTERM)
        assert by_hand.wait(timeout=60) == 0

        kept = StudioUI(STUDIO, "--keep-worker", cwd=tmp_path, log=tmp_path / "kept.log")
        spawned = wait_for(
            lambda: [w for w in runs.list_workers() if w.pid != by_hand.pid],
            timeout=120,
            what="the worker studio ui --keep-worker starts",
        )
        assert kept.stop(timeout=60) == 128 + signal.SIGTERM
        assert process_alive(spawned[0].pid), "--keep-worker did not keep the worker"
        assert [w.pid for w in runs.list_workers()] == [spawned[0].pid]  # still heartbeating
    finally:
        if by_hand.poll() is None:
            by_hand.kill()
        kill_workers()


def test_a_studio_bound_beyond_localhost_asks_for_a_token_and_says_so(capsys):
    from core.cli import ui_commands

    assert ui_commands.access_token("127.0.0.1", {}) is None
    assert ui_commands.access_token("localhost", {"STUDIO_ACCESS_TOKEN": "x"}) is None
    first, second = (ui_commands.access_token("0.0.0.0", {}) for _ in range(2))
    assert first and second and first != second and len(first) >= 20
    assert ui_commands.access_token("0.0.0.0", {"STUDIO_ACCESS_TOKEN": "chosen"}) == "chosen"
    ui_commands._announce("0.0.0.0", 8600, "secret-token")
    printed = capsys.readouterr().err
    assert printed.startswith("warning: --host 0.0.0.0 shares the studio")
    assert ":8600/?token=secret-token" in printed
