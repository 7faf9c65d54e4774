"""Typed no-op hooks through which the loop reports to the outside world (store, UI, CLI)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Control = Literal["continue", "stop", "pause", "prune"]  # prune: a sweep's pruner


@dataclass(frozen=True, slots=True)
class MetricRecord:
    """One recorded value: `name` at global optimizer `step` (1-based) during `epoch` (1-based)."""

    name: str
    step: int
    epoch: int
    value: float


class Callback:
    """Override the hooks you need; each default does nothing.

    Calls are infrequent except `control`, which the loop calls before every step: keep it
    cheap (e.g. look at the database only every few seconds).

    Set `background = True` on a callback whose `on_metrics` / `on_checkpoint` only do I/O
    (database rows, checkpoint files) and never touch the model: the loop then calls those two
    hooks on one helper thread, in order, so the writes overlap training instead of stalling
    it. `fit` waits for them before it returns, and re-raises their first error.
    """

    background: bool = False

    def on_start(self, *, total_steps: int, start_step: int, epoch: int) -> None:
        """Training starts (or resumes) at `start_step` of `total_steps`, in `epoch` (1-based)."""

    def on_metrics(self, records: list[MetricRecord]) -> None:
        """A batch of records: one per log interval, plus the epoch-end and final ones."""

    def on_checkpoint(
        self, state: dict[str, Any], *, epoch: int, step: int, metrics: dict[str, float]
    ) -> None:
        """A resumable state after `epoch` completed epochs and `step` steps (epoch end, pause,
        and the end of a `steps` run). Its tensors are CPU copies: safe to save later or
        elsewhere. Write it with `core.train.checkpoint.save_checkpoint`."""

    def control(self, *, step: int) -> Control:
        """Asked before each step (`step` = steps done so far): continue, stop, pause or prune
        (stop as unpromising: the run ends `pruned`, checkpointed, its curves kept)."""
        return "continue"


class CallbackThread:
    """Runs hook calls in submission order on one daemon thread (for `background` callbacks).

    The queue is bounded so a slow disk slows training down rather than piling up states.
    """

    def __init__(self, maxsize: int = 8) -> None:
        self._queue: queue.Queue[tuple[Callable[..., None], tuple, dict] | None] = queue.Queue(
            maxsize
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="studio-callbacks", daemon=True)
        self._thread.start()

    def submit(self, hook: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        self.raise_error()
        self._queue.put((hook, args, kwargs))

    def close(self, *, raise_error: bool = True) -> None:
        """Wait for every submitted call; re-raise the first error one of them raised."""
        self._queue.put(None)
        self._thread.join()
        if raise_error:
            self.raise_error()

    def raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # after a failure, drop the rest: later writes would build on it
            hook, args, kwargs = item
            try:
                hook(*args, **kwargs)
            except BaseException as error:  # handed to the training thread
                self._error = error
