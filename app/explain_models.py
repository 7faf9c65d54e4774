"""Run models for the Explain page, loaded once per server process and ahead of time.

The first explanation of a session used to pay, in turn, for importing Captum, for PyTorch's
first trace of a model (it imports torch._dynamo), for loading the run's dataset and weights,
and only then for the explanation itself (a tenth of a second on digits). Here one background
thread does the slow part before anyone asks: `warm_up()` imports what explaining needs, and
`prepare(run)` loads a run's model as soon as a page shows that run (Runs, Train, Explain), so
the Explain page usually finds it ready. No Streamlit here: threads never call Streamlit.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

MAX_LOADED = 2  # run models kept in memory at once

_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="explain-warm-up")
_lock = threading.Lock()
_loaded: OrderedDict[tuple[int, int], Future] = OrderedDict()
_warm: Future | None = None


@dataclass(frozen=True)
class LoadedRun:
    """A run's model and dataset, and the lock that keeps one explanation at a time on the
    shared model (Captum hooks its layers while it works)."""

    model: Any
    dataset: Any
    lock: threading.Lock


def _import_explainers() -> None:
    importlib.import_module("core.explain.explanation")  # Captum and the methods
    importlib.import_module("core.explain.attention")
    tiny = {
        "input_shape": [1, 2, 2],
        "layers": [{"type": "Conv2d", "out_channels": 1, "kernel_size": 1}],
    }
    importlib.import_module("core.builder").trace(tiny)  # the first meta trace imports dynamo


def warm_up() -> Future:
    """Start (once per process) importing what an explanation needs, in the background."""
    global _warm
    with _lock:
        if _warm is None:
            _warm = _executor.submit(_import_explainers)
        return _warm


def _load(run_id: int) -> LoadedRun:
    from core import runs

    model, dataset, _run = runs.load_run_model(run_id)
    return LoadedRun(model, dataset, threading.Lock())


def prepare(run_id: int, step: int) -> Future:
    """Start loading the run's model at this step (once), in the background; the future holds
    a LoadedRun, or the StudioError that said why it cannot be loaded."""
    warm_up()
    key = (run_id, step)
    with _lock:
        future = _loaded.get(key)
        if future is None:
            future = _executor.submit(_load, run_id)
            _loaded[key] = future
        _loaded.move_to_end(key)
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
        return future


def loaded(run_id: int, step: int) -> LoadedRun:
    """The run's model, waiting for the load `prepare` started (or starting it now)."""
    return prepare(run_id, step).result()


def is_ready(run_id: int, step: int) -> bool:
    """Whether the run's model is loaded already (the page then skips its progress note)."""
    with _lock:
        future = _loaded.get((run_id, step))
    return future is not None and future.done()


def forget() -> None:
    """Drop every loaded model (tests and the benchmark measure a cold start with it)."""
    global _warm
    with _lock:
        _loaded.clear()
        _warm = None
