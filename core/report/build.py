"""Measure everything a report says, in one pass over a run's model, with progress.

`build_report(model, dataset)` returns `ReportData` (numbers and sentences' inputs); the HTML
layer (core/report/page.py) only lays them out. `write_run_report(run_id)` does both for a
saved run and writes one self-contained file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from torch import nn

from core.errors import ReportError
from core.report.examples import SAMPLES, Example, choose_examples, explain_examples
from core.report.outcomes import Outcomes, measure_outcomes
from core.report.profiles import (
    PER_CLASS,
    Profiles,
    Progress,
    choose_samples,
    class_profiles,
)
from core.report.trust import (
    RANDOMIZATION_SAMPLES,
    Faithfulness,
    Randomization,
    Robustness,
    faithfulness,
    randomization,
    robustness,
)

MAX_SAMPLES = 50  # example predictions in one report (each is explained with its trust check)


@dataclass
class ReportData:
    """Everything a report shows, measured on one model and its test split."""

    title: str
    dataset: Any
    outcomes: Outcomes
    profiles: Profiles
    examples: list[Example]
    randomization: Randomization
    faithfulness: Faithfulness
    robustness: Robustness | None
    run: dict[str, Any] | None = None  # {"id", "spec_name", "dataset", "epoch", "status"}
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    seconds: dict[str, float] = field(default_factory=dict)  # time per stage


class _Stages:
    """One progress line over stages of known size: each stage reports its own (done, total)."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.offset = progress, total, 0
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()

    def part(self, size: int) -> Progress:
        offset = self.offset
        self.offset += size

        def report(done: int, total: int, note: str) -> None:
            if self.progress is not None:
                self.progress(offset + round(size * done / max(total, 1)), self.total, note)

        return report

    def finished(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = now - self._started
        self._started = now


def build_report(
    model: nn.Module,
    dataset: Any,
    *,
    title: str | None = None,
    run: dict[str, Any] | None = None,
    samples: int = SAMPLES,
    per_class: int = PER_CLASS,
    progress: Progress | None = None,
) -> ReportData:
    """Measure a report's numbers: test results, per-class attributions, trust checks and
    `samples` example predictions (about half of them mistakes)."""
    if len(dataset.test) == 0:
        raise ReportError(
            f"the test split of {dataset.name!r} is empty; a report measures the model on test "
            "samples it never trained on"
        )
    samples = max(0, min(int(samples), MAX_SAMPLES))
    model.eval()
    outcomes = measure_outcomes(model, dataset)
    regression = dataset.task != "classification"
    rows, _groups = choose_samples(
        None if regression else outcomes.predicted, dataset.num_classes, outcomes.total, per_class
    )
    chosen = choose_examples(outcomes, samples)
    attributed = len(rows)
    stages = _Stages(
        progress, 1 + attributed + min(attributed, RANDOMIZATION_SAMPLES) + 2 + len(chosen)
    )
    stages.part(1)(1, 1, "test results")
    stages.finished("test results")
    profiles = class_profiles(
        model,
        dataset,
        per_class=per_class,
        predicted=None if regression else outcomes.predicted,
        progress=stages.part(attributed),
    )
    stages.finished("per-class attributions")
    checked = randomization(
        model,
        profiles.attributed,
        n_steps=profiles.n_steps,
        progress=stages.part(min(attributed, RANDOMIZATION_SAMPLES)),
    )
    stages.finished("randomization check")
    step = stages.part(2)
    step(0, 2, "faithfulness check")
    faithful = faithfulness(model, profiles.attributed, dataset)
    step(1, 2, "Captum infidelity and sensitivity")
    robust = robustness(model, profiles.attributed, dataset) if attributed else None
    step(2, 2, "example predictions")
    stages.finished("faithfulness and Captum metrics")
    examples = explain_examples(model, dataset, chosen, outcomes, progress=stages.part(len(chosen)))
    stages.finished("example predictions")
    name = (run or {}).get("spec_name") or "model"
    return ReportData(
        title=title or f"What the {name} trained on {dataset.name} does",
        dataset=dataset,
        outcomes=outcomes,
        profiles=profiles,
        examples=examples,
        randomization=checked,
        faithfulness=faithful,
        robustness=robust,
        run=run,
        seconds=stages.timings,
    )


def run_facts(run: Any) -> dict[str, Any]:
    """The few facts about a saved run a report names."""
    return {
        "id": run.id,
        "spec_name": run.spec_name,
        "dataset": run.dataset,
        "epoch": run.epoch,
        "status": str(getattr(run.status, "value", run.status)),
    }


def run_report_html(
    run_id: int, *, samples: int = SAMPLES, progress: Progress | None = None
) -> tuple[str, ReportData]:
    """The report of a saved run as one HTML page (and the data it shows)."""
    from core.report.page import render_report
    from core.runs import load_run_model

    model, dataset, run = load_run_model(run_id)
    data = build_report(
        model,
        dataset,
        title=f"Run {run_id}: what the {run.spec_name or 'model'} trained on {dataset.name} does",
        run=run_facts(run),
        samples=samples,
        progress=progress,
    )
    return render_report(data), data


def write_run_report(
    run_id: int,
    out: Path | None = None,
    *,
    samples: int = SAMPLES,
    progress: Progress | None = None,
) -> Path:
    """Write the report of a saved run to `out` (default: run-ID-report.html here); returns
    the path. Written to a temporary name first, so a half-written report never appears."""
    page, _data = run_report_html(run_id, samples=samples, progress=progress)
    path = Path(out) if out is not None else Path(f"run-{run_id}-report.html")
    if path.is_dir():
        path = path / f"run-{run_id}-report.html"
    temporary = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(page, encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ReportError(f"could not write the report to {path}: {error.strerror}") from None
    return path
