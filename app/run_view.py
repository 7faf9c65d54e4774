"""What the Train and Runs pages say about a run, computed without Streamlit (and tested).

Pages only lay these out: the badge of a status, which of stop / pause / resume is offered,
the progress line with its ETA, the "points recorded" caption, the rows of the runs table, and
when a live panel must redraw the whole page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.formatting import duration_text
from core import metric_catalog as catalog
from core.runs import RunView
from core.states import RunRequest, RunStatus, can_request

STATUS_LOOK: dict[RunStatus, tuple[str, str]] = {  # status -> (badge colour, what it means)
    RunStatus.QUEUED: ("gray", "waiting for a worker"),
    RunStatus.RUNNING: ("blue", "training"),
    RunStatus.PAUSED: ("orange", "paused (checkpointed; resume continues exactly where it stopped)"),
    RunStatus.COMPLETED: ("green", "finished"),
    RunStatus.FAILED: ("red", "failed"),
    RunStatus.CANCELLED: ("gray", "stopped"),
}


def status_look(status: str) -> tuple[str, str]:
    """(badge colour, meaning) of a status; an unknown one shows as itself in grey."""
    return STATUS_LOOK.get(status, ("gray", str(status)))  # type: ignore[call-overload]


def offered_requests(run: RunView) -> dict[RunRequest, bool]:
    """Which steering buttons are enabled: a request is offered when core.states would apply
    it now (a pause already asked for is not offered again; resume withdraws it)."""
    return {
        request: can_request(request, run.status, run.requested_action) for request in RunRequest
    }


def eta_s(run: RunView, samples_per_s: float | None) -> float | None:
    """Seconds left at the latest speed, for a running run whose length is known."""
    if not samples_per_s or not run.total_steps or run.status != RunStatus.RUNNING:
        return None
    batch_size = (run.settings or {}).get("batch_size", 64)
    return max(0, run.total_steps - run.step) * batch_size / samples_per_s


def progress_text(run: RunView, latest: Mapping[str, float]) -> str:
    """ "step 120 of 400 · epoch 2 · 5,120 samples/s · about 10 s left" for the progress bar."""
    text = (
        f"step {run.step:,} of {run.total_steps:,} · epoch {run.epoch}"
        if run.total_steps
        else f"step {run.step:,}"
    )
    speed = latest.get(catalog.SAMPLES_PER_S)
    if run.status == RunStatus.RUNNING and speed:
        text += (
            f" · {catalog.value_text(catalog.SAMPLES_PER_S, speed)}"
            f" · about {duration_text(eta_s(run, speed))} left"
        )
    return text


def recorded_caption(recorded: Mapping[str, int]) -> str:
    """How many points each drawn curve has recorded, in catalog titles."""
    drawn = [(name, count) for name, count in recorded.items() if name in catalog.DRAWN]
    if not drawn:
        return "No metrics yet."
    return "Points recorded: " + ", ".join(
        f"{catalog.title(name)} {count:,}" for name, count in drawn
    )


def result_numbers(run: RunView) -> list[tuple[str, str]]:
    """(label, text) of a completed run's headline numbers, for the Train page's metric row."""
    result = run.result or {}
    metrics = result.get("metrics") or {}
    best = result.get("best_val_accuracy")
    return [
        ("Test accuracy", catalog.value_text(catalog.TEST_ACCURACY, metrics.get("test_accuracy"))),
        ("Best validation accuracy", catalog.value_text(catalog.VAL_ACCURACY, best)),
        ("Duration", duration_text(result.get("duration_s"))),
        ("Samples / s", f"{result['samples_per_s']:,.0f}" if result.get("samples_per_s") else "—"),
    ]


def runs_table_rows(all_runs: Sequence[RunView]) -> list[dict[str, Any]]:
    """One row per run for the Runs page's table."""
    rows = []
    for run in all_runs:
        result = run.result or {}
        metrics = result.get("metrics") or {}
        rows.append(
            {
                "run": run.id,
                "status": str(run.status),
                "model": run.spec_name or "—",
                "dataset": run.dataset,
                "best val accuracy": result.get("best_val_accuracy"),
                "test accuracy": metrics.get(catalog.TEST_ACCURACY),
                "duration": duration_text(result.get("duration_s")),
                "device": run.device or "—",
                "created": run.created,
            }
        )
    return rows


def run_label(run: RunView) -> str:
    return f"run {run.id} · {run.spec_name or 'model'} on {run.dataset} · {run.status}"


def default_compared(all_runs: Sequence[RunView], count: int = 2) -> list[int]:
    """The runs the Runs page overlays before a person picks: the newest completed ones."""
    return [run.id for run in all_runs if run.status == RunStatus.COMPLETED][:count]


def poll_every(run: RunView, interval_s: float) -> float | None:
    """How often a live panel reruns: while the run is active, else never."""
    return interval_s if run.is_active else None


def activity_changed(was_active: bool | None, run: RunView) -> bool:
    """Whether the run started or stopped being active since the last poll: the page then
    redraws whole once, so polling starts or stops with it."""
    return was_active is not None and was_active != run.is_active
