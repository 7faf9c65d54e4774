"""The report on the pages: "Share a report" (Explain and Runs) and the per-class view (a tab on
Explain). The numbers come from core.report; made once per run and checkpoint in this server
process, on the run's already loaded model (app.explain_models), under its lock."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import streamlit as st

from app import explain_models, state
from app.plain_text import md_escape
from core.errors import StudioError

MAX_KEPT = 4  # reports and per-class views kept in memory
_lock = threading.Lock()
_kept: OrderedDict[tuple[str, int, int], Any] = OrderedDict()


def _remembered(kind: str, run_id: int, step: int, make: Callable[[], Any] | None) -> Any:
    """The kept result for this run and checkpoint, made now by `make` when missing (None when
    missing and `make` is None)."""
    key = (kind, run_id, step)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    if make is None:
        return None
    result = make()
    with _lock:
        _kept[key] = result
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    return result


def forget() -> None:
    """Drop every kept report and per-class view (tests start each from a new studio home)."""
    with _lock:
        _kept.clear()


def _progress_bar(text: str) -> tuple[Any, Callable[[int, int, str], None]]:
    bar = st.progress(0.0, text=text)

    def progress(done: int, total: int, note: str) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"{text} ({note})")

    return bar, progress


def share_report(run: Any, *, page: str) -> None:
    """'Share a report': measure and write the run's report once (with progress), then offer
    it as one HTML file that opens in any browser with no network and no studio."""
    from core.report.build import run_facts
    from core.report.page import render_report

    def make() -> bytes:
        from core.report import build_report

        ready = explain_models.loaded(run.id, run.step)
        bar, progress = _progress_bar("Measuring the report")
        try:
            with ready.lock:
                data = build_report(
                    ready.model,
                    ready.dataset,
                    title=f"Run {run.id}: what the {run.spec_name or 'model'} trained on "
                    f"{ready.dataset.name} does",
                    run=run_facts(run),
                    progress=progress,
                )
            return render_report(data).encode("utf-8")
        finally:
            bar.empty()

    report = _remembered("report", run.id, run.step, None)
    if report is None:
        asked = st.button(
            "Share a report",
            key=state.share_report_key(page, "prepare"),
            icon=":material/share:",
            help="One HTML file for people without the studio: how well the model does, its "
            "mistakes, what it looks for in each class, examples and how far to trust them. "
            "It opens in any browser, with no network.",
        )
        if not asked:
            return
        try:
            report = _remembered("report", run.id, run.step, make)
        except StudioError as error:
            st.error(md_escape(error))
            return
    st.download_button(
        f"Download the report of run {run.id} ({len(report) / 1e6:.1f} MB, HTML)",
        data=report,
        file_name=f"run-{run.id}-report.html",
        mime="text/html",
        on_click="ignore",
        key=state.share_report_key(page, "download"),
        icon=":material/download:",
    )


def class_view(run: Any, model: Any, dataset: Any, lock: threading.Lock) -> None:
    """What the model looks for in each class (for regression: what moves the value), averaged
    over test samples, as in the shared report."""
    from core.report import class_profiles
    from core.report.figures import class_figure
    from core.report.outcomes import measure_outcomes
    from core.report.words import class_record, looks_for, quoted

    def make() -> tuple[Any, Any]:
        bar, progress = _progress_bar("Explaining test samples class by class")
        try:
            with lock:
                outcomes = measure_outcomes(model, dataset)
                predicted = outcomes.predicted if outcomes.matrix is not None else None
                return class_profiles(model, dataset, predicted=predicted, progress=progress), (
                    outcomes
                )
        finally:
            bar.empty()

    try:
        profiles, outcomes = _remembered("classes", run.id, run.step, make)
    except StudioError as error:
        st.error(md_escape(error))
        return
    regression = outcomes.matrix is None
    st.caption(
        "Integrated Gradients averaged over test samples the model assigns to each class. "
        + (
            "Darker red: more influence on the value, either way; bars show the direction."
            if regression
            else "Red: what pushes it towards the class; blue: what pushes it away."
        )
    )
    columns = st.columns(3 if dataset.modality in ("image", "signal") else 2)
    for number, profile in enumerate(profiles.classes):
        title = (
            f"What moves {quoted(profile.name)}"
            if regression
            else f"When it says {quoted(profile.name)}"
        )
        sentences = [] if regression else [class_record(dataset, outcomes, profile)]
        sentences.append(looks_for(dataset, profile, regression))
        with columns[number % len(columns)].container(border=True):
            st.markdown(f"**{md_escape(title)}**")
            for sentence in sentences:
                if sentence:
                    st.caption(md_escape(sentence))
            fig = class_figure(profile, dataset.modality, regression=regression)
            if fig is not None:
                st.plotly_chart(
                    fig,
                    key=state.explain_class_figure_key(number),
                    config={"displayModeBar": False},
                )
