"""The `studio worker` process: claims queued runs, trains them, heartbeats, recovers.

One function, `execute_run`, trains a claimed run; the worker loop and the foreground
`studio train` both go through it, so a run trains the same way wherever it runs.

- Claiming is one conditional UPDATE (core.store.repository.claim_next_run): two workers never
  train the same run, and a worker that lost a run (presumed dead, reclaimed) stops writing.
- Metrics go to the database in one transaction per batch the loop reports, never per step.
- Stop / pause requests made from any process are read between steps, at most every
  CONTROL_INTERVAL_S of wall time.
- A checkpoint is written atomically at epoch ends as core.train.policy says (the first,
  then at most every STUDIO_CHECKPOINT_EVERY_S; always at the end, a pause and a stop); a
  run that comes back (paused then resumed, or reclaimed from a dead worker) resumes from its
  latest checkpoint after deleting what was recorded past it, so no (name, step) is recorded
  twice.
- SIGTERM / SIGINT: the current step finishes, the run is checkpointed and queued again, so
  it resumes from that checkpoint when a worker next claims it. `--stop-with PID` does the same
  when process PID (the `studio ui` that started this worker) ends.
- Every worker, idle or training, re-queues the runs of workers whose heartbeat went stale, on
  its heartbeat thread: a dead worker's run never waits for a worker to fall idle.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import get_settings
from core.errors import StudioError, TrainingError
from core.states import RunRequest, RunStatus, WorkerStatus, finished_status
from core.store import db
from core.store import repository as repo
from core.store.models import utcnow
from core.train.callbacks import Callback, Control, MetricRecord

if TYPE_CHECKING:
    from core.builder import Trace
    from core.data import Dataset
    from core.train import FitResult
    from core.train.distributed import Shard

log = logging.getLogger("studio.worker")

CONTROL_INTERVAL_S = 0.25  # how often a training run reads its stop / pause request
DEFAULT_POLL_S = 1.0  # how often an idle worker looks for queued runs
FAULT_RETRY_S = 0.5  # first wait before writing again after a passing fault; doubles up to
FAULT_RETRY_MAX_S = 10.0  # this, so a full disk or a held lock is probed, not hammered
INIT_KEY = "init"  # a checkpoint's copy of the run's InitReport (train --json's "init")

ProgressFn = Callable[[int, int, dict[str, float]], None]


def new_worker_id(kind: str = "worker") -> str:
    return f"{kind}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def checkpoint_path(run_id: int, *, epoch: int, step: int) -> str:
    """Where a checkpoint goes under the artifact root (a path, or a URL: core.artifacts)."""
    from core import artifacts

    return artifacts.location("checkpoints", str(run_id), f"epoch-{epoch:04d}-step-{step:05d}.pt")


# --- heartbeat ---------------------------------------------------------------------------------


class Heartbeat:
    """A background thread that keeps `worker_id` (and the run it trains) alive in the database.

    `after_beat` runs on the same thread after each beat: the worker's periodic duties that must
    not wait for the training loop (reclaiming dead workers' runs, watching its owner)."""

    def __init__(
        self,
        worker_id: str,
        *,
        interval_s: float,
        after_beat: Callable[[], None] | None = None,
    ) -> None:
        self.worker_id = worker_id
        self.interval_s = interval_s
        self.after_beat = after_beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="studio-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                db.call(repo.heartbeat, worker_id=self.worker_id)
            except Exception as error:  # a missed beat is not fatal; the next one may pass
                log.warning("heartbeat of %s failed: %s", self.worker_id, error)
                continue
            if self.after_beat is None:
                continue
            try:
                self.after_beat()
            except Exception as error:  # same: the next beat tries again
                log.warning("periodic duty of %s failed: %s", self.worker_id, error)


# --- one run -----------------------------------------------------------------------------------


class RunRecorder(Callback):
    """The loop's callback for one run: records metrics and checkpoints, answers control()."""

    background = (
        True  # its hooks only do I/O: writing them off the training thread keeps the loop fast
    )

    def __init__(
        self,
        run_id: int,
        *,
        worker_id: str,
        interrupted: threading.Event | None = None,
        progress: ProgressFn | None = None,
        elapsed_before_s: float = 0.0,
        init_report: dict[str, Any] | None = None,
    ) -> None:
        self.run_id = run_id
        self.worker_id = worker_id
        self.init_report = init_report  # saved in each checkpoint: a resumed run still says it
        self.interrupted = interrupted or threading.Event()
        self.progress = progress
        self.elapsed_before_s = elapsed_before_s
        self.started = time.perf_counter()
        self.lost = False
        self.total_steps = 0
        self.latest: dict[str, float] = {}
        self._action: Control = "continue"
        self._checked_at = float("-inf")

    def on_start(self, *, total_steps: int, start_step: int, epoch: int) -> None:
        self.total_steps = total_steps
        if not db.call(
            repo.set_run_total_steps,
            run_id=self.run_id,
            worker_id=self.worker_id,
            total_steps=total_steps,
            step=start_step,
            epoch=epoch,
        ):
            self.lost = True
        self._report(start_step)

    def on_metrics(self, records: list[MetricRecord]) -> None:
        if self.lost or not records:
            return
        written = db.call(
            repo.record_metrics, run_id=self.run_id, worker_id=self.worker_id, records=records
        )
        if not written:
            self.lost = True
            return
        for record in records:
            self.latest[record.name] = float(record.value)

    def on_checkpoint(
        self, state: dict[str, Any], *, epoch: int, step: int, metrics: dict[str, float]
    ) -> None:
        from core import artifacts
        from core.train.checkpoint import save_checkpoint

        if self.lost or not db.call(repo.owns_run, run_id=self.run_id, worker_id=self.worker_id):
            self.lost = True
            return
        if self.init_report is not None:
            state = {**state, INIT_KEY: self.init_report}
        path = save_checkpoint(checkpoint_path(self.run_id, epoch=epoch, step=step), state)
        recorded = {k: float(v) for k, v in metrics.items()}
        recorded["elapsed_s"] = self.elapsed_s()
        row = db.call(
            repo.add_checkpoint,
            run_id=self.run_id,
            worker_id=self.worker_id,
            epoch=epoch,
            step=step,
            path=str(path),
            metrics=recorded,
        )
        if row is None:
            self.lost = True
            return
        # keep the last few and the best: every epoch's file would fill the disk on long runs
        keep = get_settings().keep_checkpoints
        for stale in db.call(repo.prune_checkpoints, run_id=self.run_id, keep_last=keep):
            artifacts.remove(stale)

    def control(self, *, step: int) -> Control:
        self._report(step)
        if self.interrupted.is_set():
            return "pause"  # checkpoint now; the worker queues the run again for another worker
        if self.lost:
            return "stop"
        now = time.monotonic()
        if now - self._checked_at >= CONTROL_INTERVAL_S:
            self._checked_at = now
            state = db.call(repo.run_control, run_id=self.run_id, readonly=True)
            if state is None or state[0] != RunStatus.RUNNING or state[1] != self.worker_id:
                self.lost = True
                return "stop"
            self._action = {RunRequest.STOP: "stop", RunRequest.PAUSE: "pause"}.get(
                state[2] or "", "continue"
            )
        return self._action

    def elapsed_s(self) -> float:
        return self.elapsed_before_s + time.perf_counter() - self.started

    def _report(self, step: int) -> None:
        if self.progress is not None:
            self.progress(step, self.total_steps, self.latest)


def _resume_state(run_id: int) -> tuple[dict[str, Any] | None, float]:
    """The latest readable checkpoint of a run and the training time before it; everything
    recorded after it is deleted first. (None, 0) when the run starts from scratch."""
    from core.train.checkpoint import load_checkpoint

    checkpoints = db.call(repo.list_checkpoints, run_id=run_id, readonly=True)
    problems: list[str] = []
    for checkpoint in reversed(checkpoints):
        try:
            state = load_checkpoint(checkpoint.path)
        except TrainingError as error:
            log.warning("run %d: skipping checkpoint %s: %s", run_id, checkpoint.path, error)
            problems.append(str(error))
            continue
        # the rewind also forgets the unreadable checkpoints taken after this one
        db.call(repo.rewind_run, run_id=run_id, step=checkpoint.step, epoch=checkpoint.epoch)
        return state, float(checkpoint.metrics.get("elapsed_s", 0.0))
    if checkpoints:
        # never a silent restart from step 0: that would delete everything the run recorded
        raise TrainingError(
            f"run {run_id} cannot resume: none of its {len(checkpoints)} checkpoint(s) can be "
            f"read (latest: {problems[0]}); its metrics are kept. To train it again from step 0, "
            f"discarding them: studio resume {run_id} --restart"
        )
    db.call(repo.rewind_run, run_id=run_id, step=0, epoch=0)
    return None, 0.0


def _result(fit: FitResult, *, duration_s: float) -> dict[str, Any]:
    result = fit.to_dict()
    result.pop("status", None)
    result.pop("error", None)
    result["duration_s"] = duration_s
    matrix = result.get("confusion_matrix")
    limit = get_settings().max_confusion_classes
    if matrix is not None and len(matrix) > limit:
        # a 5000-class matrix is 25M numbers in one row and a page that never renders
        result["confusion_matrix"] = None
        result["confusion_note"] = (
            f"the confusion matrix is not kept: {len(matrix)} classes is more than the limit of "
            f"{limit} (setting STUDIO_MAX_CONFUSION_CLASSES)"
        )
    return result


def execute_run(
    run_id: int,
    *,
    worker_id: str,
    interrupted: threading.Event | None = None,
    progress: ProgressFn | None = None,
    dataset: Dataset | None = None,
    release_status: RunStatus = RunStatus.QUEUED,
    checked: Trace | None = None,
    shard: Shard | None = None,
) -> str:
    """Train a run this worker has claimed, recording everything; returns the run's new status
    ("completed", "failed", "cancelled", "paused", "queued") or "lost" when another worker took
    it over. `interrupted` (set by a signal) pauses at the next step and sets `release_status`.
    `checked`: the run's spec already traced against `dataset` (`check_model(...,
    finished=True)`, as `train_run_foreground` does), so the model is built without tracing
    again. A run with `processes` > 1 is launched on that many processes (torchrun), each of
    which comes back here with its `shard` (core.train.distributed): rank 0 records, the
    others only train."""
    from core.builder import build_model, model_from_trace
    from core.data import load_dataset
    from core.sweeps.pruning import trial_callbacks
    from core.train import TrainConfig, fit, seed_everything
    from core.train.devices import resolve_device
    from core.train.feature_cache import with_feature_cache
    from core.train.transfer import initial_state

    run = db.call(repo.get_run, run_id=run_id, readonly=True)
    if run is None:
        raise TrainingError(f"run {run_id} does not exist")
    interrupted = interrupted or threading.Event()
    processes = int(run.settings.get("processes") or 1)
    if processes > 1 and shard is None:
        from core.train.distributed import launch_run

        return launch_run(
            run_id,
            worker_id=worker_id,
            processes=processes,
            device=str(run.settings.get("device") or "auto"),
            interrupted=interrupted,
            progress=progress,
            release_status=release_status,
        )
    leader = shard is None or shard.leader  # the process that records
    try:
        config = TrainConfig.from_stored(run.settings)  # checked at submission
        config = shard.adapt(config) if shard is not None else config
        device = resolve_device(config.device)
        if leader:
            db.call(repo.set_run_started, run_id=run_id, worker_id=worker_id, device=str(device))
        data = dataset if dataset is not None else load_dataset(run.dataset)
        seed_everything(config.seed)  # same seed, same initial weights
        model = model_from_trace(checked) if checked else build_model(run.spec, data.facts)
        resume, elapsed_before = _resume_state(run_id) if leader else (None, 0.0)
        resume = shard.share(resume) if shard is not None else resume
        # a fresh run starts from its origin's weights (TRANSFER); a resumed one from its own
        init = None if resume is not None else initial_state(run.origin, model)
        # what the first attempt loaded, carried by its checkpoints to a resumed one
        init_report = init.to_dict() if init is not None else (resume or {}).get(INIT_KEY)
        model, data, cache = with_feature_cache(model, data, config)
        recorder = RunRecorder(
            run_id,
            worker_id=worker_id,
            interrupted=interrupted,
            progress=progress,
            elapsed_before_s=elapsed_before,
            init_report=init_report,
        )
        sweep_trial = trial_callbacks(run)  # a sweep's trial: report each epoch, maybe prune
        callbacks = [recorder, *sweep_trial] if shard is None else shard.callbacks(recorder)
        outcome = fit(model, data, config, callbacks=callbacks, resume=resume, shard=shard)
    except StudioError as error:
        return _close(run_id, worker_id, RunStatus.FAILED, error=str(error))
    except Exception as error:
        if (cause := db.describe_fault(error)) is not None:
            return _pause_for_fault(run_id, worker_id, cause)
        log.error("run %d crashed:\n%s", run_id, traceback.format_exc())
        return _close(run_id, worker_id, RunStatus.FAILED, error=f"{type(error).__name__}: {error}")
    except BaseException:
        _close(run_id, worker_id, release_status)  # KeyboardInterrupt / SystemExit mid-step
        raise
    if not leader:
        return str(outcome.status)
    if recorder.lost:
        log.warning("run %d was taken over by another worker; dropping this attempt", run_id)
        return "lost"
    result = _result(outcome, duration_s=recorder.elapsed_s())
    if init_report is not None:
        result["init"] = init_report  # train --json's "init"
    if cache is not None:
        result["feature_cache"] = cache  # the body's features were computed once
    status = finished_status(outcome.status, release_status if interrupted.is_set() else None)
    return _close(
        run_id,
        worker_id,
        status,
        error=outcome.error,
        result=result,
        step=outcome.steps,
        epoch=outcome.epochs,
    )


def _close(
    run_id: int,
    worker_id: str,
    status: RunStatus,
    *,
    error: str | None = None,
    result: dict[str, Any] | None = None,
    step: int | None = None,
    epoch: int | None = None,
) -> str:
    closed = call_patiently(
        repo.finish_run,
        run_id=run_id,
        worker_id=worker_id,
        status=status,
        error=error,
        result=result,
        step=step,
        epoch=epoch,
    )
    if closed:
        log.info("run %d %s%s", run_id, status, f": {error}" if error else "")
        return status
    return "lost"


def _pause_for_fault(run_id: int, worker_id: str, cause: str) -> str:
    """A passing fault (database locked too long, disk full) is not the run's fault: pause it
    at its last good checkpoint, saying why, so that a resume continues from there."""
    log.warning("run %d: %s; pausing it at its last good checkpoint", run_id, cause)
    message = (
        f"{cause}. The run is paused at its last good checkpoint; resume it once that is "
        f"fixed: studio resume {run_id}"
    )
    return _close(run_id, worker_id, RunStatus.PAUSED, error=message)


def call_patiently(
    fn: Callable[..., Any], /, *, stop: threading.Event | None = None, **kwargs: Any
) -> Any:
    """db.call that waits out a passing fault (a lock held past db's retries, a full disk)
    instead of raising: the worker survives and writes once the fault clears. Re-raises any
    other error, and a fault once `stop` is set."""
    delay = FAULT_RETRY_S
    warned = False
    while True:
        try:
            return db.call(fn, **kwargs)
        except Exception as error:
            cause = db.describe_fault(error)
            if cause is None or (stop is not None and stop.is_set()):
                raise
            if not warned:
                log.warning("%s; waiting for it to clear", cause)
                warned = True
        (stop or threading.Event()).wait(delay)
        delay = min(delay * 2, FAULT_RETRY_MAX_S)


# --- the worker loop ---------------------------------------------------------------------------


def reclaim_stale_runs() -> list[int]:
    """Queue again the runs of workers whose heartbeat is older than settings.stale_after_s."""
    cutoff = utcnow() - timedelta(seconds=get_settings().stale_after_s)
    moved = db.call(
        repo.requeue_stale_runs,
        stale_before=cutoff,
        max_recoveries=get_settings().max_run_attempts,
    )
    for run_id in moved:
        log.info("run %d: its worker stopped heartbeating; queued again", run_id)
    return moved


def process_alive(pid: int) -> bool:
    """Whether process `pid` still runs; a zombie (exited, not yet reaped) counts as ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:  # Linux: the state letter follows the command name in parentheses
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def periodic_duties(stop: threading.Event, *, stop_with: int | None) -> Callable[[], None]:
    """What a worker does on every heartbeat, busy or idle: re-queue dead workers' runs, and
    stop (pausing its run) once its owner process `stop_with` has ended."""

    def run() -> None:
        reclaim_stale_runs()
        if stop_with is not None and not stop.is_set() and not process_alive(stop_with):
            log.info("process %d, which started this worker, ended: stopping", stop_with)
            stop.set()

    return run


def worker_device_label() -> str:
    """This machine's device, with `[N GPUs]` when it has several (what it can train)."""
    from core.train.distributed import worker_label

    return worker_label()


class GracefulSignals:
    """SIGTERM / SIGINT set an event (finish the step, checkpoint, requeue); a second one
    exits at once."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> GracefulSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        log.info("signal %d: finishing the current step, then stopping", signum)
        self.event.set()

    def __exit__(self, *_: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def run_worker(
    *,
    once: bool = False,
    poll_s: float = DEFAULT_POLL_S,
    max_runs: int | None = None,
    worker_id: str | None = None,
    stop: threading.Event | None = None,
    stop_with: int | None = None,
) -> int:
    """Claim and train queued runs until stopped; returns how many runs it trained.

    once: exit when the queue is empty; max_runs: exit after training that many runs;
    stop: an event that ends the loop (signals set it too); stop_with: a process id whose end
    stops the worker like a SIGTERM (its run is checkpointed and queued again)."""
    settings = get_settings()
    worker_id = worker_id or new_worker_id()
    stop = stop or threading.Event()
    db.call(
        repo.register_worker,
        worker_id=worker_id,
        host=socket.gethostname(),
        pid=os.getpid(),
        device=worker_device_label(),
        status=WorkerStatus.IDLE,
    )
    log.info("worker %s started (database %s)", worker_id, settings.database_url)
    from core.train.distributed import Capacity

    capacity = Capacity.of_machine()  # runs needing more (GPUs, processes) are left to others
    trained = 0
    reclaim_stale_runs()  # at once on start; then on every heartbeat, even while training
    duties = periodic_duties(stop, stop_with=stop_with)
    from core.sweeps.queue import IdleSweeps

    idle_sweeps = IdleSweeps(worker_id)  # an idle worker queues the next trials of sweeps
    with (
        GracefulSignals(stop),
        Heartbeat(worker_id, interval_s=settings.heartbeat_s, after_beat=duties),
    ):
        try:
            while not stop.is_set() and (max_runs is None or trained < max_runs):
                run = call_patiently(
                    repo.claim_next_run, stop=stop, worker_id=worker_id, can_run=capacity.can_run
                )
                if run is None:
                    if idle_sweeps():
                        continue  # new sweep trials are queued: claim one at once
                    if once:
                        break
                    stop.wait(poll_s)
                    continue
                log.info("worker %s: training run %d", worker_id, run.id)
                call_patiently(
                    repo.set_worker_status, worker_id=worker_id, status=WorkerStatus.BUSY
                )
                execute_run(run.id, worker_id=worker_id, interrupted=stop)
                call_patiently(
                    repo.set_worker_status, worker_id=worker_id, status=WorkerStatus.IDLE
                )
                trained += 1
        finally:
            db.call(repo.set_worker_status, worker_id=worker_id, status=WorkerStatus.STOPPED)
            log.info("worker %s stopped after %d run(s)", worker_id, trained)
    return trained
