"""One run on two CPU processes (torchrun + DistributedDataParallel, gloo): the same accuracy
as one process, a killed run resumed by another worker, a stop reaching every process."""

from __future__ import annotations

import signal

import pytest

from core import runs
from core.errors import SettingsError
from core.store import db
from core.store import repository as repo
from core.train import TrainConfig
from core.train.distributed import Capacity
from tests.core.test_worker import workers  # noqa: F401  (the fixture)
from tests.polling import wait_for
from tests.specs import NARROW_DIGITS_CNN


@pytest.mark.slow
def test_two_processes_reach_the_test_accuracy_of_one():
    config = {"epochs": 3, "batch_size": 32, "device": "cpu", "seed": 3}
    one = runs.train_run_foreground(spec=NARROW_DIGITS_CNN, dataset="digits", config=config)
    two = runs.train_run_foreground(
        spec=NARROW_DIGITS_CNN, dataset="digits", config=config | {"processes": 2}
    )
    assert two["status"] == "completed", two["error"]
    assert two["steps"] == one["steps"]  # the same global batches
    accuracy = two["metrics"]["test_accuracy"], one["metrics"]["test_accuracy"]
    assert abs(accuracy[0] - accuracy[1]) <= 0.01, accuracy
    assert runs.get_run(two["run_id"]).settings["processes"] == 2


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_elsewhere_and_a_stop_ends_every_process(workers):  # noqa: F811
    config = {"epochs": 200, "batch_size": 16, "device": "cpu", "log_every": 5, "processes": 2}
    run_id = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=config)
    first = workers()
    wait_for(lambda: runs.list_checkpoints(run_id), timeout=180, what="a first checkpoint")
    first.process.send_signal(signal.SIGKILL)  # the worker; its processes notice and pause
    first.process.wait()
    wait_for(
        lambda: runs.get_run(run_id).status == "queued", timeout=120, what="the run queued again"
    )
    resumed_from = runs.list_checkpoints(run_id)[-1].step

    second = workers()
    wait_for(lambda: runs.get_run(run_id).step > resumed_from + 20, timeout=180, what="the resume")
    assert runs.get_run(run_id).attempts == 2
    runs.request_stop(run_id)
    wait_for(lambda: runs.get_run(run_id).status == "cancelled", timeout=60, what="the stop")
    wait_for(
        lambda: f"rank 1 of run {run_id}: cancelled" in runs_log(run_id),
        timeout=60,
        what="the second process to stop too",
    )
    assert f"rank 0 of run {run_id}: cancelled" in runs_log(run_id)
    assert second.process.poll() is None  # the worker itself lives on, ready for more
    assert db.call(repo.metric_duplicates, run_id=run_id) == 0


def runs_log(run_id: int) -> str:
    from core.config import get_settings

    path = get_settings().logs_dir / f"run-{run_id}-processes.log"
    return path.read_text() if path.exists() else ""


def test_placement_reads_what_a_worker_can_train():
    eight = Capacity.from_label("cuda:0 (NVIDIA H200, 139 GiB) [8 GPUs]")
    assert eight == Capacity(cuda=8) and Capacity.from_label("cuda:0 (NVIDIA H200)").cuda == 1
    cpu = Capacity.from_label("cpu (AMD EPYC (2 cores))")
    assert cpu.can_run({"device": "cpu", "processes": 4}) and cpu.can_run({"device": "auto"})
    assert cpu.why_not({"device": "cuda", "processes": 2}) == "it needs 2 CUDA GPUs"
    assert eight.can_run({"device": "cuda", "processes": 8})
    assert not eight.can_run({"device": "cuda", "processes": 9})
    assert not Capacity(cuda=1).can_run({"device": "cuda:1"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"processes": 2, "device": "mps"}, "not mps"),
        ({"processes": 2, "device": "cuda:1"}, "use device 'cuda'"),
        ({"processes": 4, "batch_size": 2}, "at least 4"),
        ({"processes": 2, "freeze_epochs": 1}, "freeze_epochs=1 needs processes 1"),
    ],
)
def test_settings_several_processes_cannot_train_are_refused(settings, message):
    with pytest.raises(SettingsError, match=message):
        TrainConfig.checked(settings, train_size=100, task="classification", check_device=False)


def test_the_train_page_learns_which_live_workers_can_train_the_settings():
    for name, device in (("cpu-box", "cpu (AMD EPYC (2 cores))"),
                         ("gpu-box", "cuda:0 (NVIDIA H200, 139 GiB) [2 GPUs]")):  # fmt: skip
        db.call(repo.register_worker, worker_id=name, host=name, pid=1, device=device,
                status="idle")  # fmt: skip
    able = runs.workers_able({"device": "cuda", "processes": 2})
    assert [w.id for w in able] == ["gpu-box"]
    assert runs.workers_able({"device": "cuda", "processes": 4}) == []
    assert len(runs.workers_able({"device": "cpu", "processes": 2})) == 2
