"""Explain: why a trained model predicted what it did — one sentence, then the pictures."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from app import explain_models, figures_explain, report_views, state
from app.plain_text import md_escape
from core import runs
from core.errors import StudioError
from core.explain import METHOD_TITLES, METHODS, TEXT_METHODS, attention_maps, explain
from core.explain.layers import find_last_conv
from core.explain.samples import (
    drawing_colors,
    drawn_sample,
    image_sample,
    misclassified,
    row_sample,
    sentence_sample,
)

BROWSE = "Browse the test set"
WRONG = "Only the ones it got wrong"
UPLOADED = "Upload an image"
DRAWN = "Draw one yourself"
TYPED = "Type your own sentence"
EDITED = "Edit a row"
CANVAS_SIZE = 280  # screen pixels: big enough to draw with a mouse, square like the pictures
LEGEND = (
    "Red marks what pushed the model towards its answer, blue what pushed it away. "
    "The sentence above was measured: the studio hid the most important tenth of the input "
    "and asked the model again."
)


def load(run_id: int, step: int):
    """(model, dataset, lock) of a run at a step, loaded once per server process and usually
    ahead of time (app.explain_models); the lock keeps one explanation at a time on the
    shared model, since Captum hooks its layers while it works."""
    if not explain_models.is_ready(run_id, step):
        with st.spinner("Getting the model ready (once per run: loading it and its data)…"):
            ready = explain_models.loaded(run_id, step)
    else:
        ready = explain_models.loaded(run_id, step)
    return ready.model, ready.dataset, ready.lock


@st.cache_data(max_entries=4, show_spinner="Finding the samples it gets wrong…")
def wrong_indices(run_id: int, step: int) -> list[int]:
    ready = explain_models.loaded(run_id, step)
    with ready.lock:
        return misclassified(ready.model, ready.dataset, "test")


def run_label(run) -> str:
    return f"run {run.id} · {run.spec_name or 'model'} on {run.dataset} · {run.status}"


def choose_run():
    trained = [run for run in runs.list_runs() if run.epoch > 0]
    if not trained:
        st.info("No trained run yet: train a model, then come back to ask it why.")
        st.page_link(state.PAGE_TRAIN, label="Open Train", icon=":material/play_circle:")
        st.stop()
    by_id = {run.id: run for run in trained}
    wanted = state.query_param(state.QP_RUN)
    if wanted and wanted.isdigit() and int(wanted) in by_id:
        state.put(state.EXPLAIN_RUN, int(wanted))
    if state.get(state.EXPLAIN_RUN) not in by_id:
        state.put(state.EXPLAIN_RUN, trained[0].id)
    run_id = st.selectbox(
        "Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key=state.EXPLAIN_RUN
    )
    state.set_query_param(state.QP_RUN, str(run_id))
    explain_models.prepare(run_id, by_id[run_id].step)  # load it while the page draws
    return by_id[run_id]


def choose_sample(run, dataset):
    """(sample, true class index or None, caption) from the test set, an upload, a drawing, a
    sentence a person types (text) or a row a person edits (tables)."""
    own = {"image": [UPLOADED, DRAWN], "text": [TYPED], "tabular": [EDITED]}
    sources = [BROWSE, WRONG] + own.get(dataset.modality, [])
    source = st.radio("Sample", sources, horizontal=True, key=state.EXPLAIN_SOURCE)
    test = dataset.test
    if source == TYPED:
        sentence = st.text_input(
            "Your sentence",
            value=dataset.human(test.x[0]),
            key=state.EXPLAIN_SENTENCE,
            help="Change a word and press Enter: the prediction and the picture follow.",
        )
        return sentence_sample(dataset, sentence), None, "your sentence"
    if source == EDITED:
        return row_sample(dataset, edit_row(dataset)), None, "your row"
    if source == DRAWN:
        return drawn_sample(dataset, draw(dataset)), None, "your drawing"
    if source == UPLOADED:
        upload = st.file_uploader(
            "An image (PNG or JPEG)", type=["png", "jpg", "jpeg"], key=state.EXPLAIN_UPLOAD
        )
        if upload is None:
            st.info("Upload a picture to see what the model makes of it.")
            st.stop()
        return image_sample(dataset, upload.getvalue()), None, f"your image “{upload.name}”"
    if source == WRONG:
        wrong = wrong_indices(run.id, run.step)
        if not wrong:
            st.success("The model gets every test sample right.")
            st.stop()
        index = st.selectbox(
            f"{len(wrong)} test samples it gets wrong",
            wrong,
            format_func=lambda i: f"#{i}: a {dataset.class_names[int(test.y[i])]}",
            key=state.EXPLAIN_WRONG_CHOICE,
        )
    else:
        index = st.number_input(
            f"Test sample (0–{len(test) - 1})", 0, len(test) - 1, 0, step=1, key=state.EXPLAIN_INDEX
        )
    index = int(index)
    return test.x[index], int(test.y[index]), f"test sample #{index}"


def edit_row(dataset) -> dict[str, float]:
    """A test row, in the table's own units, for a person to change; the values as edited."""
    start = dataset.human(dataset.test.x[0])
    table = st.data_editor(
        pd.DataFrame([start]),
        hide_index=True,
        num_rows="fixed",
        key=state.EXPLAIN_ROW,
    )
    st.caption("Change a value: the prediction and the bars follow.")
    return {str(name): table.iloc[0][name] for name in table.columns}


def clear_canvas() -> None:
    state.put(state.EXPLAIN_CANVAS_CLEARS, state.get(state.EXPLAIN_CANVAS_CLEARS, 0) + 1)


def draw(dataset):
    """The canvas in the dataset's colours; stops the page until something is drawn."""
    ink, paper = drawing_colors(dataset)
    canvas, controls = st.columns([1, 2])
    stroke = controls.slider("Brush width", 10, 60, 30, key=state.EXPLAIN_STROKE)
    controls.button(
        "Clear the drawing",
        on_click=clear_canvas,
        icon=":material/ink_eraser:",
        key=state.EXPLAIN_CLEAR,
    )
    controls.caption(
        "Draw with the mouse, large enough to fill most of the square: the pictures the model "
        "learned from fill their frame."
    )
    with canvas:
        st.space("small")  # room for the canvas's own toolbar, which sits above it
        drawing = st_canvas(
            stroke_width=stroke,
            stroke_color=ink,
            background_color=paper,
            height=CANVAS_SIZE,
            width=CANVAS_SIZE,
            drawing_mode="freedraw",
            return_image_data=True,
            key=state.explain_canvas_key(state.get(state.EXPLAIN_CANVAS_CLEARS, 0)),
        )
    if drawing.image_data is None or not (drawing.json_data or {}).get("objects"):
        st.info("Draw on the square to see what the model makes of it.")
        st.stop()
    return drawing.image_data


def choose_methods(model, dataset) -> tuple[list[str], bool]:
    has_conv = find_last_conv(model) is not None
    offered = list(TEXT_METHODS if dataset.modality == "text" else METHODS)
    if not has_conv:
        offered.remove("grad_cam")
    default = ["integrated_gradients", "grad_cam" if has_conv else "saliency"]
    if dataset.modality == "text":
        default = ["integrated_gradients"]
    columns = st.columns([3, 1])
    methods = columns[0].multiselect(
        "Methods, side by side",
        offered,
        default=[m for m in default if m in offered],
        format_func=METHOD_TITLES.get,
        max_selections=3,
        key=state.EXPLAIN_METHODS,
    )
    sanity = columns[1].toggle(
        "Trust check",
        value=True,
        key=state.EXPLAIN_SANITY,
        help="Also explain a copy of the model with random weights: if the picture hardly "
        "changes, it shows the input rather than what the model learned.",
    )
    return methods, sanity


def show(explanations, dataset, x, model, lock) -> None:
    """The sentence first, then the warnings, then the pictures (the sample itself beside them
    for images), then the top-3 probabilities."""
    first = explanations[0]
    with st.container(border=True):
        st.markdown(f"#### {md_escape(first.summary)}")
        for explanation in explanations:
            for warning in explanation.warnings:
                st.warning(
                    f"**{METHOD_TITLES[explanation.method]}**: {md_escape(warning)}", icon="⚠️"
                )
        checked = [
            METHOD_TITLES[e.method]
            for e in explanations
            if e.randomization_correlation is not None and not e.warnings
        ]
        if checked:
            st.success(
                f"Trust check passed ({', '.join(checked)}): the same model with random weights "
                "gives a different picture, so these pictures show what this model learned.",
                icon=":material/verified:",
            )
        human = dataset.human(x)
        plain = 1 if dataset.modality == "image" else 0
        columns = st.columns(plain + len(explanations))
        if plain:
            columns[0].plotly_chart(
                figures_explain.sample_figure(human, title="What the model was shown"),
                key=state.EXPLAIN_SAMPLE,
            )
        for column, explanation in zip(columns[plain:], explanations, strict=True):
            column.plotly_chart(
                figures_explain.explanation_figure(
                    explanation.modality,
                    human,
                    explanation.attribution.numpy(),
                    tokens=explanation.tokens,
                    title=METHOD_TITLES[explanation.method],
                ),
                key=state.explain_figure_key(explanation.method),
            )
        regions = {e.method: (e.extras.get("effect") or {}).get("region") for e in explanations}
        if len(set(regions.values())) > 1:  # said once above when every picture agrees
            for column, explanation in zip(columns[plain:], explanations, strict=True):
                column.caption(f"This picture points most at {regions[explanation.method]}.")
        bars, legend = st.columns([1, 1])
        bars.plotly_chart(
            figures_explain.probability_bars_figure(first.probabilities, title="Top 3"),
            key=state.EXPLAIN_TOP3,
        )
        legend.caption(LEGEND)
    with lock:
        maps = attention_maps(model, x, dataset=dataset)
    if maps:
        st.subheader("Where attention looked", anchor=False)
        for attention in maps:
            st.plotly_chart(
                figures_explain.attention_map_figure(
                    attention.weights, tokens=first.tokens, title=attention.name
                ),
                key=state.explain_attention_key(attention.name),
            )


def main() -> None:
    explain_models.warm_up()  # Captum and PyTorch's tracing, imported in the background
    st.header("Explain a prediction", anchor=False)
    st.caption(
        "Pick a trained run and a sample: see what the model looked at, and whether to trust it."
    )
    run = choose_run()
    try:
        model, dataset, lock = load(run.id, run.step)
    except StudioError as error:
        st.error(md_escape(error))
        st.stop()
    report_views.share_report(run, page="explain")
    one, per_class = st.tabs(
        ["One prediction", "What it looks for in each class"],
        key=state.EXPLAIN_TABS,
        on_change="rerun",
    )
    if per_class.open:  # only the open tab is worked out: the per-class view takes seconds
        with per_class:
            report_views.class_view(run, model, dataset, lock)
        return
    with one:
        one_prediction(run, model, dataset, lock)


def one_prediction(run, model, dataset, lock) -> None:
    """One sample, one or more methods: the sentence, the warnings and the pictures."""
    if dataset.task != "classification":
        st.info(
            "This run predicts numbers (regression); single explanations are for classifiers. "
            "The other tab shows what moves its value up or down."
        )
        st.stop()
    try:
        x, label, caption = choose_sample(run, dataset)
    except StudioError as error:
        st.error(md_escape(error))
        st.stop()
    methods, sanity = choose_methods(model, dataset)
    if not methods:
        st.info("Pick at least one method.")
        st.stop()
    st.caption(f"Explaining {md_escape(caption)}.")
    progress = st.progress(0.0, text="Asking the model…")
    explanations = []
    try:
        with lock:
            for done, method in enumerate(methods):
                progress.progress(
                    done / len(methods),
                    text=f"Asking the model… ({METHOD_TITLES[method]}, {done + 1} of "
                    f"{len(methods)}{', with the trust check' if sanity else ''})",
                )
                explanations.append(
                    explain(
                        model, x, method=method, dataset=dataset, label=label, sanity_check=sanity
                    )
                )
    except StudioError as error:
        progress.empty()
        st.error(md_escape(error))
        st.stop()
    progress.empty()
    show(explanations, dataset, x, model, lock)


main()
