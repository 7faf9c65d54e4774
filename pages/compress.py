"""Compress: make a finished run smaller (pruning, int8), see before and after side by side,
and whether the smaller model still relies on the same parts of its inputs."""

from __future__ import annotations

import streamlit as st

from app import spec_editor, state
from app.figures_compress import compression_table_figure
from app.plain_text import md_escape
from core import runs
from core.errors import StudioError
from core.states import RunStatus

METHODS = {
    "structured": "Structured: remove whole channels and units (a smaller spec)",
    "unstructured": "Unstructured: zero the smallest weights (same shapes)",
    "none": "No pruning (int8 only)",
}


def run_label(run) -> str:
    return f"run {run.id} · {run.spec_name or 'model'} on {run.dataset}"


def choose_run():
    finished = [run for run in runs.list_runs(status=RunStatus.COMPLETED) if run.epoch > 0]
    if not finished:
        st.info("No finished run yet: train a model to the end, then come back to compress it.")
        st.page_link(state.PAGE_TRAIN, label="Open Train", icon=":material/play_circle:")
        st.stop()
    by_id = {run.id: run for run in finished}
    wanted = state.query_param(state.QP_RUN)
    if wanted and wanted.isdigit() and int(wanted) in by_id:
        state.put(state.COMPRESS_RUN, int(wanted))
    if state.get(state.COMPRESS_RUN) not in by_id:
        state.put(state.COMPRESS_RUN, finished[0].id)
    run_id = st.selectbox(
        "Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key=state.COMPRESS_RUN
    )
    state.set_query_param(state.QP_RUN, str(run_id))
    return by_id[run_id]


def choices():
    """The same choices as `studio compress`; returns CompressOptions or None (not asked)."""
    from core.compress import CompressOptions

    method = st.radio("Pruning", list(METHODS), format_func=METHODS.get, key=state.COMPRESS_METHOD)
    columns = st.columns(3)
    ratio = columns[0].slider(
        "Share to remove",
        min_value=0.05,
        max_value=0.95,
        value=0.5,
        step=0.05,
        disabled=method == "none",
        help="Of each layer's channels (structured) or of all weights (unstructured).",
        key=state.COMPRESS_RATIO,
    )
    epochs = columns[1].number_input(
        "Fine-tune epochs",
        min_value=0,
        max_value=1000,
        value=0,
        disabled=method != "structured",
        help="Queued as a new run with this run's settings, starting from the pruned weights.",
        key=state.COMPRESS_EPOCHS,
    )
    int8 = columns[2].checkbox(
        "int8 (ONNX)",
        help="Quantize the exported ONNX model with onnxruntime; it can be served.",
        key=state.COMPRESS_INT8,
    )
    if method == "unstructured":
        st.caption(
            "Zeros stored densely take the same memory and time: unstructured pruning alone "
            "does not make a model faster on a CPU."
        )
    if not st.button("Compress", type="primary", key=state.COMPRESS_GO):
        return None
    return CompressOptions(
        prune=None if method == "none" else float(ratio),
        method="unstructured" if method == "unstructured" else "structured",
        finetune_epochs=int(epochs) if method == "structured" else 0,
        int8=bool(int8),
    )


def compress(run, options) -> None:
    from core.compress import compress_run

    with st.status("Compressing…", expanded=True) as status:

        def progress(stage: str, done: int, total: int) -> None:
            status.update(label=f"{stage.capitalize()}…")

        try:
            report = compress_run(run.id, options, progress=progress)
        except StudioError as error:
            status.update(label="Not compressed", state="error")
            state.notify(state.COMPRESS_NOTICE, "error", str(error))
            return
        status.update(label="Compressed", state="complete", expanded=False)
    state.put(state.COMPRESS_SHOWN, str(report.folder))


def show(result: dict, *, table_key: str = state.COMPRESS_TABLE) -> None:
    st.plotly_chart(compression_table_figure(result), width="stretch", key=table_key)
    agreement = result.get("attribution_agreement")
    if agreement:
        st.markdown(f"**{md_escape(agreement['sentence'])}**")
    for note in result.get("notes") or []:
        st.caption(md_escape(note))
    changes = (result.get("pruning") or {}).get("changes") or []
    if changes:
        st.markdown(
            "Smaller layers: "
            + ", ".join(
                md_escape(f"{c['name']} {key} {old} → {new}")
                for c in changes
                for key, (old, new) in c["sizes"].items()
            )
        )
    links = st.columns(3)
    if result.get("spec"):
        links[0].page_link(
            state.PAGE_BUILD,
            label="Open the compressed spec in Build",
            icon=":material/construction:",
            query_params={state.QP_DRAFT: spec_editor.encode(result["spec"])},
        )
    finetune = result.get("finetune")
    if finetune:
        links[1].page_link(
            state.PAGE_RUNS,
            label=f"Fine-tune: run {finetune['run_id']} ({finetune['status']})",
            icon=":material/monitoring:",
            query_params={state.QP_RUN: str(finetune["run_id"])},
        )
    if result.get("folder"):
        links[2].caption(f"Files (servable with `studio serve`): {md_escape(result['folder'])}")


def fine_tunes(run) -> None:
    """Finished fine-tunes of this run: their own before/after table, on request."""
    from core.compress import compare_with_parent

    done = [
        child
        for child in runs.children_of(run.id)
        if (child.origin or {}).get("kind") == "compress" and child.status == RunStatus.COMPLETED
    ]
    if not done:
        return
    st.subheader("Fine-tuned", anchor=False)
    child_id = st.selectbox(
        "Fine-tune",
        [c.id for c in done],
        format_func=lambda i: f"run {i}",
        key=state.COMPRESS_FINETUNE,
    )
    compared = state.get(state.COMPRESS_COMPARED) or {}
    if child_id not in compared and st.button(
        f"Compare run {child_id} with run {run.id}", key=state.COMPRESS_COMPARE
    ):
        with st.spinner("Measuring both side by side…"):
            compared[child_id] = compare_with_parent(child_id).to_json()
        state.put(state.COMPRESS_COMPARED, compared)
    if child_id in compared:
        show(compared[child_id], table_key=state.compress_table_key(child_id))


st.title("Compress")
st.caption(
    "Prune a trained model (whole channels and units, or the smallest weights), quantize it to "
    "int8, and compare it with the original: size, work, speed, accuracy, and whether it still "
    "looks at the same parts of its inputs."
)
state.show_notice(state.COMPRESS_NOTICE)
chosen = choose_run()
asked = choices()
if asked is not None:
    compress(chosen, asked)
    state.show_notice(state.COMPRESS_NOTICE)

from core.compress import list_reports  # noqa: E402 (Torch-Pruning loads only on this page)

reports = list_reports(chosen.id)
if reports:
    st.subheader("Before and after", anchor=False)
    shown = state.get(state.COMPRESS_SHOWN)
    current = next((r for r in reports if r.get("folder") == shown), reports[0])
    show(current)
fine_tunes(chosen)
