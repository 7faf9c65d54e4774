"""The Train page's fit check: the chosen spec traced once against the chosen dataset.

The trace is kept in the session under `state.FIT_CHECK`, keyed by the spec and the dataset's
facts, so the page's reruns and the Launch callback reuse it: a launch traces the spec once
(`core.runs.submit_run(checked=...)` builds the run's check from it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from app import state
from app.fixes import in_words
from app.formatting import count_text, shape_text
from core import builder
from core.builder import Trace
from core.data.dataset import DatasetInfo


@dataclass(frozen=True)
class FitCheck:
    """Whether the model trains on the dataset, as one sentence, and the trace behind it."""

    ok: bool
    message: str
    traced: Trace


def fit_message(traced: Trace, info: DatasetInfo) -> str:
    """One sentence: the size and output of a model that fits, or the failing layer's error,
    which already names the layer (index, type, id) once, its fix said in words as on Build."""
    if traced.ok:
        shape = shape_text(traced.output_shape) if traced.output_shape else "?"
        return (
            f"The model fits {info.name}: {count_text(traced.params)} parameters, "
            f"output {shape} for {info.num_classes} classes."
        )
    return in_words(str(traced.error or "the model cannot be built for this dataset"))


def check_fit(spec: dict, info: DatasetInfo) -> FitCheck:
    """The spec traced against the dataset as strictly as Launch checks it; the same spec and
    dataset again (a rerun, the Launch callback) reuse the trace instead of tracing again."""
    facts = info.facts
    key = json.dumps([spec, facts.to_dict()], sort_keys=True, default=str)
    kept = state.get(state.FIT_CHECK)
    if kept is not None and kept[0] == key:
        return kept[1]
    traced = builder.trace(spec, facts, finished=True)  # what `core.runs.check_launch` accepts
    check = FitCheck(traced.ok, fit_message(traced, info), traced)
    state.put(state.FIT_CHECK, (key, check))
    return check
