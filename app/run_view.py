"""What the Train and Runs pages say about a run, computed without Streamlit (and tested).

Pages only lay these out: the badge of a status, which of stop / pause / resume is offered,
the progress line with its ETA, the "points recorded" caption, the rows of the runs table, a
run's settings in words and what differs between two runs, and when a live panel must redraw
the whole page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.formatting import duration_text
from core import metric_catalog as catalog
from core.runs import RunView
from core.runs.diagnose import ChanceVerdict, stuck_at_chance
from core.states import RunRequest, RunStatus, can_request

STATUS_LOOK: dict[RunStatus, tuple[str, str]] = {  # status -> (badge colour, what it means)
    RunStatus.QUEUED: ("gray", "waiting for a worker"),
    RunStatus.RUNNING: ("blue", "training"),
    RunStatus.PAUSED: (
        "orange",
        "paused (checkpointed; resume continues exactly where it stopped)",
    ),
    RunStatus.COMPLETED: ("green", "finished"),
    RunStatus.FAILED: ("red", "failed"),
    RunStatus.CANCELLED: ("gray", "stopped"),
    RunStatus.PRUNED: ("violet", "stopped early by its sweep as unpromising (curves kept)"),
}


# the word a person reads on a badge, where the stored state's name says something else
STATUS_WORD: dict[RunStatus, str] = {RunStatus.CANCELLED: "stopped"}


def status_look(status: str) -> tuple[str, str]:
    """(badge colour, meaning) of a status; an unknown one shows as itself in grey."""
    return STATUS_LOOK.get(status, ("gray", str(status)))  # type: ignore[call-overload]


def status_word(status: str) -> str:
    """The status as the pages write it: a cancelled run reads "stopped", as its caption says."""
    return STATUS_WORD.get(status, str(status))  # type: ignore[call-overload]


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
                "status": status_word(run.status),
                "model": run.spec_name or "—",
                "dataset": run.dataset,
                **settings_columns(run.settings),
                "best val accuracy": result.get("best_val_accuracy"),
                "test accuracy": metrics.get(catalog.TEST_ACCURACY),
                "duration": duration_text(result.get("duration_s")),
                "device": run.device or "—",
                "from": origin_text(run) or "",
                "note": "did not learn: loss at chance" if chance_verdict(run, None) else "",
                "created": run.created,
            }
        )
    return rows


ORIGIN_WORDS = {
    "init-from": "started from the weights of",
    "compress": "compressed from",
    "sweep": "a sweep trial; base model from",
}


def origin_text(run: RunView) -> str | None:
    """Where a run came from, in words ("compressed from run 4"); None for a run from scratch."""
    origin = run.origin or {}
    if run.parent_run_id is None:
        if origin.get("kind") == "sweep":
            return f"trial {origin.get('trial', '?')} of sweep {origin.get('sweep_id', '?')}"
        return None
    words = ORIGIN_WORDS.get(str(origin.get("kind")), "started from")
    return f"{words} run {run.parent_run_id}"


def lineage_text(run: RunView, children: Sequence[RunView]) -> str | None:
    """The run's parent and children in one sentence for the run's detail; None when neither."""
    parts = []
    origin = origin_text(run)
    if origin:
        parts.append(origin[0].upper() + origin[1:])
    if children:
        named = ", ".join(
            f"run {child.id} ({(child.origin or {}).get('kind', 'started from it')})"
            for child in children
        )
        parts.append(f"Runs started from this one: {named}")
    return ". ".join(parts) + "." if parts else None


def run_label(run: RunView) -> str:
    return f"run {run.id} · {run.spec_name or 'model'} on {run.dataset} · {status_word(run.status)}"


# ---- a run's settings in words -----------------------------------------------------------------

SETTING_TITLES = {  # the settings that shape a run most, as the table's columns call them
    "optimizer": "optimizer",
    "lr": "learning rate",
    "scheduler": "schedule",
    "length": "length",
    "batch_size": "batch size",
}
COMPARED_SETTINGS = (  # what `settings_differences` looks at, in this order
    "optimizer",
    "lr",
    "momentum",
    "weight_decay",
    "scheduler",
    "length",
    "batch_size",
    "loss",
    "label_smoothing",
    "precision",
    "grad_clip",
    "early_stopping_patience",
    "seed",
)


def length_text(settings: Mapping[str, Any]) -> str:
    """ "10 epochs" or "400 steps": how long the run was asked to train."""
    if settings.get("steps"):
        return f"{int(settings['steps']):,} steps"
    epochs = settings.get("epochs")
    if epochs:
        return f"{int(epochs)} epoch{'s' if int(epochs) != 1 else ''}"
    return "—"


def setting_text(name: str, settings: Mapping[str, Any]) -> str:
    """One setting's value as a person reads it ("0.001", "no schedule", "10 epochs")."""
    if name == "length":
        return length_text(settings)
    value = settings.get(name)
    if name == "scheduler":
        return "no schedule" if value in (None, "none") else str(value)
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_columns(settings: Mapping[str, Any] | None) -> dict[str, str]:
    """The runs table's settings columns: optimizer, learning rate, schedule, length, batch."""
    settings = settings or {}
    return {title: setting_text(name, settings) for name, title in SETTING_TITLES.items()}


def settings_text(settings: Mapping[str, Any] | None) -> str:
    """ "adam · lr 0.001 · no schedule · 10 epochs · batch 64": a run's settings in a line."""
    settings = settings or {}
    return " · ".join(
        [
            setting_text("optimizer", settings),
            f"lr {setting_text('lr', settings)}",
            setting_text("scheduler", settings),
            length_text(settings),
            f"batch {setting_text('batch_size', settings)}",
        ]
    )


def overlay_name(run: RunView) -> str:
    """The overlay legend's name of a run: its number and how it was trained."""
    settings = run.settings or {}
    return (
        f"run {run.id} · {setting_text('optimizer', settings)} "
        f"lr {setting_text('lr', settings)} · {setting_text('scheduler', settings)}"
    )


def settings_differences(first: RunView, second: RunView) -> list[str]:
    """What differs between two runs, one phrase each ("optimizer: adam → sgd"); the model and
    the dataset first when they differ."""
    differences = []
    if first.spec_name != second.spec_name or first.spec != second.spec:
        differences.append(
            f"model: {first.spec_name or 'model'} → {second.spec_name or 'model'}"
            + (" (same name, other layers)" if first.spec_name == second.spec_name else "")
        )
    if first.dataset != second.dataset:
        differences.append(f"dataset: {first.dataset} → {second.dataset}")
    a, b = first.settings or {}, second.settings or {}
    for name in COMPARED_SETTINGS:
        before, after = setting_text(name, a), setting_text(name, b)
        if before != after:
            title = SETTING_TITLES.get(name, name.replace("_", " "))
            differences.append(f"{title}: {before} → {after}")
    return differences


def comparison_sentence(first: RunView, second: RunView) -> str:
    """ "Run 1 → run 2: optimizer: adam → sgd; learning rate: 0.001 → 0.05." """
    differences = settings_differences(first, second)
    head = f"Run {first.id} → run {second.id}"
    if not differences:
        return f"{head}: same model, data and settings (only chance differs between them)."
    return f"{head}: " + "; ".join(differences) + "."


# ---- did it learn? -------------------------------------------------------------------------------


def chance_verdict(
    run: RunView, num_classes: int | None, losses: Sequence[float] = ()
) -> ChanceVerdict | None:
    """Whether a finished classification run never left chance level (core.runs.diagnose):
    from the losses given (a curve), else from its final train and validation losses."""
    if run.status != RunStatus.COMPLETED:
        return None
    result = run.result or {}
    metrics = result.get("metrics") or {}
    recorded = list(losses) or [
        metrics[name] for name in (catalog.TRAIN_LOSS, catalog.VAL_LOSS) if name in metrics
    ]
    accuracy = result.get("best_val_accuracy")
    if accuracy is None:
        accuracy = metrics.get(catalog.TEST_ACCURACY)
    if num_classes is None and run.confusion_matrix:
        num_classes = len(run.confusion_matrix)
    return stuck_at_chance(
        num_classes=num_classes, losses=recorded, accuracy=accuracy, settings=run.settings
    )


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
