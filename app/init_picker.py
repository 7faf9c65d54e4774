"""The Train page's "Start from run…" picker: which earlier run's weights a new run starts
from, and, before launch, which layers they fill, which start fresh and which are skipped."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import state
from app.plain_text import md_escape
from core import runs
from core.errors import StudioError
from core.states import RunStatus
from core.train.transfer import InitReport, init_origin, preview_init

STARTABLE = (RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.PAUSED)  # runs with weights


@st.cache_data(ttl=30, show_spinner=False)
def _preview(spec: dict, dataset: str, run_id: int) -> InitReport:
    return preview_init(spec, dataset, run_id)


def preview_lines(report: InitReport) -> list[str]:
    """The preview in plain lines: loaded, new, skipped with the reason of each."""
    lines = [f"Loaded from run {report.from_run}: {', '.join(report.loaded) or 'nothing'}"]
    if report.new:
        lines.append(f"New (random start): {', '.join(report.new)}")
    lines += [f"Skipped {s['name']}: {s['reason']}" for s in report.skipped]
    return lines


def init_picker(spec: dict[str, Any], dataset: str) -> None:
    """The picker and, for a chosen run, the preview of what it loads."""
    try:
        candidates = runs.list_runs(status=list(STARTABLE), limit=50)
    except StudioError:
        candidates = []
    labels = {
        run.id: f"run {run.id} · {run.spec_name or 'model'} on {run.dataset}" for run in candidates
    }
    if state.get(state.TRAIN_INIT_FROM) not in (None, *labels):
        state.pop(state.TRAIN_INIT_FROM)  # a kept run that was deleted
    chosen = st.selectbox(
        "Start from run…",
        [None, *labels],
        format_func=lambda run_id: (
            "random weights (from scratch)" if run_id is None else labels[run_id]
        ),
        key=state.TRAIN_INIT_FROM,
        help="Copy the weights of every layer whose name and shape match that run's; the "
        "others start fresh (a head for another number of classes is replaced).",
    )
    if chosen is None:
        return
    try:
        report = _preview(spec, dataset, int(chosen))
    except StudioError as error:
        st.error(md_escape(error))
        return
    st.caption("  \n".join(md_escape(line) for line in preview_lines(report)))


def chosen_lineage() -> dict[str, Any]:
    """`parent_run_id` and `origin` for `submit_run`, from the picker ({} for from scratch)."""
    run_id = state.get(state.TRAIN_INIT_FROM)
    if run_id is None:
        return {}
    return {"parent_run_id": int(run_id), "origin": init_origin(int(run_id))}
