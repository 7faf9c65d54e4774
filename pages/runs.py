"""Runs: every run in one table, several runs' curves overlaid, one run's results in detail."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import explain_models, figures, report_views, run_view, spec_editor, state
from app import live as live_curves
from app.plain_text import md_escape
from core import metric_catalog as catalog
from core import runs
from core.data import describe_dataset
from core.errors import StudioError
from core.states import RunStatus


@st.cache_data(ttl=300, show_spinner=False)
def class_names(dataset: str) -> list[str]:
    try:
        return list(describe_dataset(dataset).class_names)
    except StudioError:
        return []


def chance_verdict(run):
    """Whether a finished run never left chance level, from every loss it recorded."""
    if run.status != RunStatus.COMPLETED:
        return None
    curves = live_curves.compared_curves(run)
    losses = [
        float(value)
        for name in (catalog.TRAIN_LOSS, catalog.VAL_LOSS)
        if name in curves
        for value in curves[name][1]
    ]
    names = class_names(run.dataset)
    return run_view.chance_verdict(run, len(names) or None, losses)


def compare(all_runs: list) -> None:
    st.subheader("Compare runs", anchor=False)
    by_id = {run.id: run for run in all_runs}
    if state.RUNS_COMPARE not in st.session_state:
        state.put(state.RUNS_COMPARE, run_view.default_compared(all_runs))
    chosen = st.multiselect(
        "Runs to overlay",
        list(by_id),
        format_func=lambda i: run_view.run_label(by_id[i]),
        key=state.RUNS_COMPARE,
        placeholder="choose two or more runs",
    )
    picked = [by_id[i] for i in chosen if i in by_id]
    overlay = [(run_view.overlay_name(run), live_curves.compared_curves(run)) for run in picked]
    st.plotly_chart(
        figures.runs_overlay_figure(overlay),
        key=state.RUNS_OVERLAY_CHART,
        config={"displayModeBar": False},
    )
    if len(picked) >= 2:  # what differs between the first run and each other one
        for other in picked[1:]:
            st.caption(md_escape(run_view.comparison_sentence(picked[0], other)))


def ask_delete(run_id: int) -> None:
    state.put(state.RUNS_CONFIRM_DELETE, run_id)


def cancel_delete() -> None:
    state.pop(state.RUNS_CONFIRM_DELETE)


def confirm_delete(run_id: int) -> None:
    state.pop(state.RUNS_CONFIRM_DELETE)
    try:
        runs.delete_run(run_id)
    except StudioError as error:
        state.notify(state.RUNS_NOTICE, "error", f"Not deleted: {error}")
        return
    compared = state.get(state.RUNS_COMPARE) or []
    state.put(state.RUNS_COMPARE, [i for i in compared if i != run_id])
    if state.query_param(state.QP_RUN) == str(run_id):
        state.set_query_param(state.QP_RUN, None)
    state.notify(state.RUNS_NOTICE, "success", f"Deleted run {run_id} and its files.")


def open_in_build(run) -> None:
    draft = spec_editor.from_spec(run.spec)
    if run.spec_name:
        draft.name = run.spec_name
    state.put(state.DRAFT, draft)
    state.put(state.INSERT_AFTER, None)
    state.put(state.INPUT_SOURCE, run.dataset)
    state.notify(state.NOTICE, "success", f"Opened the model of run {run.id}.")


def detail(all_runs: list) -> None:
    st.subheader("One run", anchor=False)
    by_id = {run.id: run for run in all_runs}
    wanted = state.query_param(state.QP_RUN)
    if wanted != state.get(state.RUNS_URL_SEEN):  # a link or a reload named a run: show it
        state.put(state.RUNS_URL_SEEN, wanted)
        if wanted and wanted.isdigit() and int(wanted) in by_id:
            state.put(state.RUNS_DETAIL, int(wanted))
    if state.get(state.RUNS_DETAIL) not in by_id:
        state.put(state.RUNS_DETAIL, all_runs[0].id)
    run_id = st.selectbox(
        "Run",
        list(by_id),
        format_func=lambda i: run_view.run_label(by_id[i]),
        key=state.RUNS_DETAIL,
    )
    state.set_query_param(state.QP_RUN, str(run_id))
    state.put(state.RUNS_URL_SEEN, str(run_id))
    run = by_id[run_id]
    actions = st.columns(4)
    if actions[0].button(
        "Open its model in Build", key=state.RUNS_OPEN_BUILD, icon=":material/construction:"
    ):
        open_in_build(run)
        st.switch_page(state.PAGE_BUILD)
    actions[1].page_link(
        state.PAGE_TRAIN,
        label="Watch on Train",
        icon=":material/play_circle:",
        query_params={state.QP_RUN: str(run.id)},
    )
    if run.epoch > 0:  # a trained run: load it for Explain now, before anyone asks
        explain_models.prepare(run.id, run.step)
    if any(p.endswith("explain.py") for p in _page_paths()):
        actions[2].page_link(
            state.PAGE_EXPLAIN,
            label="Explain its predictions",
            icon=":material/lightbulb:",
            query_params={state.QP_RUN: str(run.id)},
        )
    actions[3].button(
        "Delete…",
        key=state.RUNS_DELETE,
        on_click=ask_delete,
        args=(run.id,),
        icon=":material/delete:",
    )
    if state.get(state.RUNS_CONFIRM_DELETE) == run.id:
        with st.container(border=True):
            st.warning(
                f"Delete run {run.id}, its metrics and its checkpoint files? This cannot be undone."
            )
            yes, no = st.columns(2)
            yes.button(
                "Delete for good",
                type="primary",
                key=state.RUNS_DELETE_CONFIRM,
                on_click=confirm_delete,
                args=(run.id,),
            )
            no.button("Cancel", key=state.RUNS_DELETE_CANCEL, on_click=cancel_delete)
    if run.epoch > 0:
        report_views.share_report(run, page="runs")
    st.caption("Settings: " + md_escape(run_view.settings_text(run.settings)))
    lineage(run, by_id)
    if run.status == RunStatus.FAILED and run.error:
        st.error(md_escape(run.error))
    verdict = chance_verdict(run)
    if verdict is not None:
        st.warning(md_escape(verdict.text), icon=":material/trending_flat:")
    matrix = run.confusion_matrix
    if run.result.get("confusion_note"):
        st.info("Per-class results are not shown: " + md_escape(run.result["confusion_note"]))
        return
    if run.status != RunStatus.COMPLETED or not matrix:
        st.info(
            "The confusion matrix and per-class accuracy appear when the run has completed "
            f"(this one is {run_view.status_word(run.status)})."
        )
        return
    names = class_names(run.dataset)
    left, right = st.columns(2)
    left.plotly_chart(
        figures.confusion_matrix_figure(matrix, names, title="Confusion matrix (test split)"),
        key=state.RUNS_CONFUSION,
        config={"displayModeBar": False},
    )
    right.plotly_chart(
        figures.per_class_accuracy_figure(matrix, names, title="Accuracy per class (test split)"),
        key=state.RUNS_PER_CLASS,
        config={"displayModeBar": False},
    )


def lineage(run, by_id: dict) -> None:
    """The run it started from and the runs started from it, each a link to its detail."""
    children = runs.children_of(run.id)
    text = run_view.lineage_text(run, children)
    if text is None:
        return
    st.caption(":material/account_tree: " + md_escape(text))
    related = ([run.parent_run_id] if run.parent_run_id is not None else []) + [
        child.id for child in children
    ]
    links = st.columns(min(len(related), 6))
    for column, related_id in zip(links, related[:6], strict=False):
        if related_id in by_id:
            column.page_link(
                state.PAGE_RUNS,
                label=f"Open run {related_id}",
                query_params={state.QP_RUN: str(related_id)},
            )
        else:
            column.caption(f"run {related_id} was deleted")


def _page_paths() -> list[str]:
    from pathlib import Path

    return [str(p) for p in (Path(__file__).resolve().parent).glob("*.py")]


def main() -> None:
    st.header("Runs", anchor=False)
    st.caption("Every training run, its curves next to others, and its results class by class.")
    state.show_notice(state.RUNS_NOTICE)
    try:
        all_runs = runs.list_runs()
    except StudioError as error:
        st.error(md_escape(error))
        return
    if not all_runs:
        st.info("No runs yet: launch one on the Train page.")
        st.page_link(state.PAGE_TRAIN, label="Open Train", icon=":material/play_circle:")
        return
    st.dataframe(
        pd.DataFrame(run_view.runs_table_rows(all_runs)),
        hide_index=True,
        key=state.RUNS_TABLE,
        column_config={
            "best val accuracy": st.column_config.ProgressColumn(
                "best val accuracy", format="percent", min_value=0.0, max_value=1.0
            ),
            "test accuracy": st.column_config.ProgressColumn(
                "test accuracy", format="percent", min_value=0.0, max_value=1.0
            ),
            "created": st.column_config.DatetimeColumn("created", format="D MMM, HH:mm"),
        },
    )
    compare(all_runs)
    detail(all_runs)


try:
    main()
except StudioError as error:  # the last net: a message a person can act on, never a traceback
    st.error(md_escape(error))
