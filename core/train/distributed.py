"""One run on several processes: torchrun launches them, DistributedDataParallel trains.

A run with `processes` N > 1 is launched by its worker (or `studio train`) as
`python -m torch.distributed.run --standalone --nproc-per-node N -m core.train.distributed RUN`.
Every process builds the same model from the same seed and goes through `core.worker.execute_run`
with a `Shard`; the loop (core.train.loop) then:

- wraps the model in DistributedDataParallel: gloo on CPU, nccl on CUDA (one GPU per process,
  cuda:LOCAL_RANK);
- gives each process its share of every global batch of the epoch's fixed permutation (the
  batch stays `batch_size`); each loss is weighted by its share, so the averaged gradient is
  the gradient of the whole batch (BatchNorm statistics stay per process, as in DDP);
- validates and tests on every process over the whole split (same weights, same numbers).

Rank 0 alone records metrics and writes checkpoints (the run's `RunRecorder`); its stop / pause
decision is broadcast every CONTROL_EVERY steps, so every process stops at the same step. A
resumed run's state is read by rank 0 and broadcast. The worker that launched the processes keeps
heartbeating; it asks them to pause (SIGTERM to the worker) through a flag file, and they pause
by themselves when the worker dies, so its run is queued again at its last checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.errors import SettingsError
from core.train.callbacks import Callback, Control, MetricRecord

if TYPE_CHECKING:
    from core.train.config import TrainConfig

log = logging.getLogger("studio.distributed")

CONTROL_EVERY = 4  # steps between stop / pause agreements (one tiny CPU broadcast each)
DECISIONS = ("continue", "stop", "pause")
WATCH_S = 0.2  # how often rank 0 looks at the interrupt flag and the launching worker
LOG_TAIL = 1500  # characters of the processes' log quoted when they fail


# ---- what a worker can train --------------------------------------------------------------


@dataclass(frozen=True)
class Capacity:
    """The devices of one worker's machine, as far as run placement cares."""

    cuda: int = 0  # CUDA GPUs
    mps: bool = False

    @classmethod
    def of_machine(cls) -> Capacity:
        cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return cls(cuda=cuda, mps=bool(torch.backends.mps.is_available()))

    @classmethod
    def from_label(cls, label: str | None) -> Capacity:
        """Read a worker's device label (`worker_label`): `cuda:0 (NVIDIA H200, 139 GiB)
        [4 GPUs]` -> 4 GPUs, `cuda:1 (...)` -> at least 2; `mps (...)` -> mps; anything else
        -> CPU only."""
        label = label or ""
        if label.startswith("cuda"):
            found = re.search(r"\[(\d+) GPUs\]", label)
            index = re.match(r"cuda:(\d+)", label)  # cuda:1 exists, so at least 2 GPUs
            count = int(found.group(1)) if found else 1
            return cls(cuda=max(count, int(index.group(1)) + 1 if index else 1))
        return cls(mps=label.startswith("mps"))

    def why_not(self, settings: Mapping[str, Any]) -> str | None:
        """None when this machine can train a run with `settings` (a stored TrainConfig dict),
        else what it lacks, in words."""
        device = str(settings.get("device") or "auto")
        processes = int(settings.get("processes") or 1)
        if device in ("auto", "cpu"):
            return None  # auto uses the GPUs when there are enough, CPU processes otherwise
        if device == "mps":
            return None if self.mps else "it asks for mps (an Apple GPU)"
        index = int(device.split(":", 1)[1]) if ":" in device else 0
        needed = max(processes, index + 1)
        if self.cuda >= needed:
            return None
        return f"it needs {needed} CUDA GPU{'s' if needed > 1 else ''}"

    def can_run(self, settings: Mapping[str, Any]) -> bool:
        return self.why_not(settings) is None


def worker_label() -> str:
    """The device label a worker registers with; several GPUs add `[N GPUs]` so that other
    machines (placement, the Train page) know what it can train."""
    from core.train.devices import device_label, resolve_device

    label = device_label(resolve_device("auto"))
    count = Capacity.of_machine().cuda
    return f"{label} [{count} GPUs]" if count > 1 else label


def check_processes(
    config: TrainConfig, *, train_size: int | None, check_device: bool = True
) -> None:
    """Refuse settings that several processes cannot train (TrainConfig.validate calls this)."""
    n = config.processes
    if not torch.distributed.is_available():
        raise SettingsError(
            f"processes={n} needs torch.distributed, which this PyTorch build lacks; use 1"
        )
    if config.device == "mps":
        raise SettingsError(f"processes={n} works on CPU or CUDA, not mps; use processes 1")
    if config.device.startswith("cuda:"):
        raise SettingsError(
            f"with processes={n} use device 'cuda' (process i trains on cuda:i) or 'auto', "
            f"not {config.device!r}"
        )
    if config.batch_size < n:
        raise SettingsError(
            f"batch_size={config.batch_size} cannot be shared out over {n} processes; "
            f"use a batch size of at least {n}"
        )
    if config.freeze_epochs:
        raise SettingsError(
            f"freeze_epochs={config.freeze_epochs} needs processes 1: DistributedDataParallel "
            "cannot change which weights train in the middle of a run"
        )
    if train_size is not None and train_size < n:
        raise SettingsError(f"{train_size} training samples cannot be shared over {n} processes")
    if check_device and config.device == "cuda":
        have = Capacity.of_machine().cuda
        if have < n:
            raise SettingsError(
                f"processes={n} on cuda needs {n} GPUs (one per process); this machine has "
                f"{have}: use fewer processes, or device 'auto' or 'cpu'"
            )


# ---- inside each process ------------------------------------------------------------------


@dataclass
class Shard:
    """This process's place in a multi-process run, and the few collective calls it makes."""

    rank: int
    world: int
    local_rank: int
    cuda: bool
    control_group: Any = None  # a gloo group for the small CPU messages (nccl moves GPU data)

    @property
    def leader(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, *, device: str) -> Shard:
        """Join the process group torchrun set up (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*)."""
        import torch.distributed as dist

        world = int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ["LOCAL_RANK"])
        cuda = device == "cuda" or (
            device == "auto" and torch.cuda.is_available() and torch.cuda.device_count() >= world
        )
        if cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
        group = dist.new_group(backend="gloo") if cuda else None
        return cls(dist.get_rank(), world, local_rank, cuda, group)

    def adapt(self, config: TrainConfig) -> TrainConfig:
        """The run's settings for this process: its own GPU, or the CPU."""
        device = f"cuda:{self.local_rank}" if self.cuda else "cpu"
        return dataclasses.replace(config, device=device)

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel around the model (already on this process's device); it
        starts every process from rank 0's weights."""
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.local_rank] if self.cuda else None)

    def local(self, index: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This process's share of a global batch and the weight of its mean loss: the
        averaged weighted gradients equal the whole batch's gradient. A batch too small to
        share (the epoch's last, with fewer than 2 samples per process: BatchNorm needs 2)
        is trained whole by every process (the average of equal gradients is that gradient)."""
        total = len(index)
        if total < 2 * self.world:
            return index, 1.0
        part = index.tensor_split(self.world)[self.rank]
        return part, len(part) * self.world / total

    def share(self, value: Any) -> Any:
        """Rank 0's `value` on every process (the resume state)."""
        import torch.distributed as dist

        box = [value if self.leader else None]
        dist.broadcast_object_list(box, src=0, group=self.control_group)
        return box[0]

    def agree(self, decision: Control) -> Control:
        """Rank 0's stop / pause decision on every process."""
        import torch.distributed as dist

        code = torch.tensor([DECISIONS.index(decision)], dtype=torch.int64)
        dist.broadcast(code, src=0, group=self.control_group)
        return DECISIONS[int(code.item())]  # type: ignore[return-value]

    def callbacks(self, recorder: Callback) -> list[Callback]:
        """Rank 0 records through the run's recorder; the others only follow its decisions."""
        return [_Leader(recorder, self)] if self.leader else [_Follower(self)]


class _Leader(Callback):
    """Rank 0: the recorder's hooks, and its decisions broadcast to the other processes."""

    background = True

    def __init__(self, recorder: Callback, shard: Shard) -> None:
        self.recorder, self.shard = recorder, shard

    def on_start(self, *, total_steps: int, start_step: int, epoch: int) -> None:
        self.recorder.on_start(total_steps=total_steps, start_step=start_step, epoch=epoch)

    def on_metrics(self, records: list[MetricRecord]) -> None:
        self.recorder.on_metrics(records)

    def on_checkpoint(
        self, state: dict[str, Any], *, epoch: int, step: int, metrics: dict[str, float]
    ) -> None:
        self.recorder.on_checkpoint(state, epoch=epoch, step=step, metrics=metrics)

    def control(self, *, step: int) -> Control:
        decision = self.recorder.control(step=step)  # also reports progress
        if step % CONTROL_EVERY:
            return "continue"
        return self.shard.agree(decision)


class _Follower(Callback):
    """Ranks 1..N-1: record nothing, stop or pause when rank 0 says so."""

    def __init__(self, shard: Shard) -> None:
        self.shard = shard

    def control(self, *, step: int) -> Control:
        if step % CONTROL_EVERY:
            return "continue"
        return self.shard.agree("continue")


def main(argv: list[str] | None = None) -> int:
    """One process of a multi-process run (started by torchrun; see `launch_run`)."""
    parser = argparse.ArgumentParser(prog="python -m core.train.distributed")
    parser.add_argument("run_id", type=int)
    parser.add_argument("--worker-id", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--interrupt-file", type=Path, required=True)
    parser.add_argument("--release-status", default="queued")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s rank %(process)d %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    import torch.distributed as dist

    from core.states import RunStatus
    from core.worker import execute_run, process_alive

    shard = Shard.start(device=args.device)
    interrupted = threading.Event()
    done = threading.Event()

    def watch() -> None:  # rank 0: the worker asks for a pause, or died
        while not done.wait(WATCH_S):
            if args.interrupt_file.exists() or not process_alive(args.parent_pid):
                interrupted.set()

    if shard.leader:
        threading.Thread(target=watch, name="studio-ddp-watch", daemon=True).start()
    try:
        status = execute_run(
            args.run_id,
            worker_id=args.worker_id,
            interrupted=interrupted,
            release_status=RunStatus(args.release_status),
            shard=shard,
        )
        log.info("rank %d of run %d: %s", shard.rank, args.run_id, status)
    finally:
        done.set()
        dist.destroy_process_group()
    return 0


# ---- in the worker ------------------------------------------------------------------------


def launch_run(
    run_id: int,
    *,
    worker_id: str,
    processes: int,
    device: str,
    interrupted: threading.Event,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    release_status: str = "queued",
) -> str:
    """Train a claimed run on `processes` processes with torchrun and wait for them; returns the
    run's new status as execute_run does. `interrupted` (a signal to the worker) asks them to
    pause at their next agreement; processes that die without closing the run fail it, quoting
    their log."""
    from core.config import get_settings
    from core.states import RunStatus
    from core.store import db
    from core.store import repository as repo
    from core.worker import _close

    settings = get_settings()
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.logs_dir / f"run-{run_id}-processes.log"
    flag = settings.home / "interrupts" / f"run-{run_id}-{os.getpid()}"
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc-per-node={processes}",
        "-m", "core.train.distributed", str(run_id), "--worker-id", worker_id,
        "--device", device, "--parent-pid", str(os.getpid()),
        "--interrupt-file", str(flag), "--release-status", str(release_status),
    ]  # fmt: skip
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    log.info("run %d: launching %d processes (log: %s)", run_id, processes, log_path)
    with log_path.open("ab") as output:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # a Ctrl-C reaches the worker, which asks for a pause
        )
        last_report = 0.0
        while process.poll() is None:
            if interrupted.is_set() and not flag.exists():
                flag.touch()
            if progress is not None and time.monotonic() - last_report > 1.0:
                last_report = time.monotonic()
                row = db.call(repo.get_run, run_id=run_id, readonly=True)
                if row is not None:
                    progress(row.step, row.total_steps or 0, {})
            time.sleep(WATCH_S)
    flag.unlink(missing_ok=True)
    row = db.call(repo.get_run, run_id=run_id, readonly=True)
    if row is not None and row.status != RunStatus.RUNNING:
        return str(row.status)  # rank 0 closed it: completed, failed, paused, queued again
    if row is None or row.worker_id != worker_id:
        return "lost"
    tail = log_path.read_text(errors="replace")[-LOG_TAIL:].strip()
    return _close(
        run_id,
        worker_id,
        RunStatus.FAILED,
        error=(
            f"the {processes} training processes ended (exit code {process.returncode}) without "
            f"finishing run {run_id}; the end of {log_path}:\n{tail}"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
