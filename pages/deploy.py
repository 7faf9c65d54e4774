"""Deploy: take a finished run out of the studio — files to download, a local server, examples
to call it with, and a box to try it (the answer and why)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import streamlit as st

from app import state
from app.figures_explain import explanation_figure, probability_bars_figure
from app.plain_text import md_escape
from core import runs
from core.config import get_settings
from core.errors import StudioError
from core.explain import METHOD_TITLES, METHODS, TEXT_METHODS
from core.serve import processes
from core.serve.contract import contract_for, raw_sample
from core.serve.examples import call, curl_example, human_view, python_example
from core.states import RunStatus

FORMAT_TITLES = {
    "onnx": ("ONNX", "runs with onnxruntime in Python, C++, C#, Java, JavaScript"),
    "pt2": ("torch.export", "a PyTorch 2 ExportedProgram (torch.export.load)"),
    "bundle": (
        "Bundle",
        "model, weights, preprocessing, explanation baselines, serve.py and a model card "
        "(zip); `studio serve` on the unzipped folder predicts and explains on any machine",
    ),
}
TEST_SAMPLE, UPLOADED, TYPED = "A test sample", "Upload an image", "Type a text"
DEFAULT_URL = "http://127.0.0.1:8000"


@st.cache_resource(max_entries=2, show_spinner="Loading the run's data…")
def dataset_of(name: str):
    """The run's dataset, once per server process (read-only: shared by sessions)."""
    from core.data import load_dataset

    return load_dataset(name)


def run_label(run) -> str:
    return f"run {run.id} · {run.spec_name or 'model'} on {run.dataset}"


def choose_run():
    finished = [run for run in runs.list_runs(status=RunStatus.COMPLETED) if run.epoch > 0]
    if not finished:
        st.info("No finished run yet: train a model to the end, then come back to ship it.")
        st.page_link(state.PAGE_TRAIN, label="Open Train", icon=":material/play_circle:")
        st.stop()
    by_id = {run.id: run for run in finished}
    wanted = state.query_param(state.QP_RUN)
    if wanted and wanted.isdigit() and int(wanted) in by_id:
        state.put(state.DEPLOY_RUN, int(wanted))
    if state.get(state.DEPLOY_RUN) not in by_id:
        state.put(state.DEPLOY_RUN, finished[0].id)
    run_id = st.selectbox(
        "Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key=state.DEPLOY_RUN
    )
    state.set_query_param(state.QP_RUN, str(run_id))
    return by_id[run_id]


def file_bytes(path: Path) -> tuple[bytes, str]:
    """A file as it is, or a folder (the bundle) as a zip of itself."""
    if path.is_file():
        return path.read_bytes(), path.name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in sorted(path.rglob("*")):
            if item.is_file():
                archive.write(item, Path(path.name) / item.relative_to(path))
    return buffer.getvalue(), f"{path.name}.zip"


def downloads(run) -> None:
    from core.export import FORMATS, export_run

    st.subheader("Download")
    made: dict = state.get(state.DEPLOY_EXPORTS) or {}
    for column, fmt in zip(st.columns(len(FORMATS)), FORMATS, strict=True):
        title, what = FORMAT_TITLES[fmt]
        with column:
            st.markdown(f"**{title}**")
            st.caption(what)
            result = made.get(f"{run.id}:{fmt}")
            if result is None and st.button(f"Export {title}", key=state.deploy_export_key(fmt)):
                with st.spinner("Exporting, then checking it against the studio's model…"):
                    try:
                        result = export_run(run.id, fmt).to_json()
                    except StudioError as error:
                        st.error(md_escape(str(error)))
                        continue
                made[f"{run.id}:{fmt}"] = result
                state.put(state.DEPLOY_EXPORTS, made)
            if result is not None and Path(result["path"]).exists():
                data, name = file_bytes(Path(result["path"]))
                st.download_button(
                    f"Download {name}", data, file_name=name, key=state.deploy_download_key(fmt)
                )
                st.caption(
                    f"Checked on test samples: largest difference from the studio's model "
                    f"{result['max_abs_diff']:.1e}"
                )


def servers(run):
    """The local servers (any run), a stop button each, and a start button for this run."""
    st.subheader("Serve")
    listed = processes.list_servers()
    for view in listed:
        left, right = st.columns([5, 1])
        serves = f"run {view.run_id}" if view.run_id is not None else view.target
        left.markdown(
            f"`{view.url}` · {md_escape(serves)} · {view.runtime} · pid {view.pid} · "
            f"since {view.started[11:16]} UTC"
        )
        if right.button("Stop", key=state.deploy_stop_key(view.pid)):
            try:
                processes.stop_server(view.pid)
            except StudioError as error:
                st.error(md_escape(str(error)))
            st.rerun()
    mine = [view for view in listed if view.run_id == run.id]
    if not listed:
        st.caption("No local server is running.")
    runtime = st.radio(
        "Runtime", ["onnx", "torch"], horizontal=True, key=state.DEPLOY_RUNTIME,
        help="onnxruntime (the default, as the bundle serves) or PyTorch eager",
    )  # fmt: skip
    if st.button(f"Start a server for run {run.id}", key=state.DEPLOY_START, type="primary"):
        with st.spinner("Starting the server (its first start exports the model to ONNX)…"):
            try:
                processes.start_server(run.id, runtime=runtime)
            except StudioError as error:
                state.notify(state.DEPLOY_NOTICE, "error", str(error))
        st.rerun()
    state.show_notice(state.DEPLOY_NOTICE)
    return mine[0] if mine else None


def examples(contract: dict, server) -> None:
    st.subheader("Call it")
    url = server.url if server is not None else DEFAULT_URL
    with_key = bool(get_settings().api_key)
    st.caption(
        f"With a real test sample, as a person has it ({md_escape(contract['input']['raw'])})."
        + ("" if server else f" Start a server first, or run `studio serve RUN_ID` ({url}).")
    )
    sample = contract["example"]
    st.code(curl_example(url, sample, with_key=with_key), language="bash")
    st.code(python_example(url, sample, with_key=with_key), language="python")


def chosen_input(contract: dict, dataset):
    """(JSON sample or None, image file or None, what it is) from the try-it box."""
    sources = [TEST_SAMPLE]
    if contract["kind"] == "image":
        sources.append(UPLOADED)
    if contract["kind"] == "text":
        sources.append(TYPED)
    source = st.radio("Send", sources, horizontal=True, key=state.DEPLOY_SOURCE)
    if source == UPLOADED:
        upload = st.file_uploader("An image", type=["png", "jpg", "jpeg"], key=state.DEPLOY_UPLOAD)
        if upload is None:
            return None, None, None
        return None, (upload.name, upload.getvalue()), f"your image “{upload.name}”"
    if source == TYPED:
        text = st.text_input("A text", key=state.DEPLOY_TEXT)
        return (text, None, "your text") if text.strip() else (None, None, None)
    count = len(dataset.test)
    index = st.number_input(f"Test sample (0–{count - 1})", 0, count - 1, 0, key=state.DEPLOY_INDEX)
    truth = dataset.label_name(dataset.test.y[int(index)])
    return raw_sample(dataset, "test", int(index)), None, f"test sample #{index} (truly {truth})"


def uploaded_pixels(contract: dict, data: bytes) -> np.ndarray:
    """An uploaded image as the picture shows it: resized to the model's input, (H, W, 3)."""
    from PIL import Image

    _, height, width = contract["shape"]
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB").resize((width, height)), dtype=np.uint8)


def try_it(contract: dict, dataset, server) -> None:
    st.subheader("Try it")
    if server is None:
        st.info("Start a server for this run above, then send it samples from here.")
        return
    sample, file, what = chosen_input(contract, dataset)
    classifier = contract["task"] == "classification"
    methods = TEXT_METHODS if contract["kind"] == "text" else METHODS
    method = st.selectbox(
        "Explain with", methods, format_func=METHOD_TITLES.get, key=state.DEPLOY_METHOD
    ) if classifier else None  # fmt: skip
    if what is None:
        st.caption("Nothing to send yet.")
        return
    key = get_settings().api_key
    if st.button("Send to the server", key=state.DEPLOY_SEND, type="primary"):
        with st.spinner(f"Asking {server.url}…"):
            if file is not None:
                status, answer = call(server.url, "/predict", file=file, api_key=key)
            else:
                status, answer = call(server.url, "/predict", {"inputs": [sample]}, api_key=key)
            explanation = None
            if status == 200 and classifier:
                options = {"method": method, "sanity_check": False}
                if file is not None:
                    fields = {"method": method, "sanity_check": "false"}
                    _, explanation = call(
                        server.url, "/explain", file=file, fields=fields, api_key=key
                    )
                else:
                    _, explanation = call(
                        server.url, "/explain", {"input": sample, **options}, api_key=key
                    )
        state.put(state.DEPLOY_ANSWER, (what, status, answer, explanation))
    shown = state.get(state.DEPLOY_ANSWER)
    if not shown or shown[0] != what:
        return
    _what, status, answer, explanation = shown
    if status != 200:
        st.error(md_escape(f"the server answered {status}: {answer.get('detail')}"))
        return
    prediction = answer["predictions"][0]
    if not classifier:
        st.markdown(f"#### The model predicts {md_escape(prediction['label'])} for {what}")
        return
    top = [{"label": k, "probability": v} for k, v in prediction["probabilities"].items()]
    st.markdown(
        f"#### The server says {md_escape(prediction['label'])} "
        f"({top[0]['probability']:.0%}) for {md_escape(what)}"
    )
    st.plotly_chart(probability_bars_figure(top, title="Top classes"))
    if not explanation or "summary" not in explanation:
        detail = (explanation or {}).get("detail", "no answer")
        st.warning(md_escape(f"No explanation: {detail}"))
        return
    st.markdown(md_escape(explanation["summary"]))
    human = uploaded_pixels(contract, file[1]) if file else human_view(contract, sample)
    figure = explanation_figure(
        contract["kind"],
        human,
        np.asarray(explanation["attribution"], dtype=np.float32),
        tokens=explanation.get("tokens"),
        title=METHOD_TITLES[explanation["method"]],
    )
    st.plotly_chart(figure)


st.title("Deploy")
st.caption(
    "Take a finished run out of the studio: files that run without it (each checked against "
    "the studio's model), a local HTTP server with predictions and explanations, and examples."
)
run = choose_run()
dataset = dataset_of(run.dataset)
contract = contract_for(dataset, run_id=run.id, model_name=run.spec.get("name"))
downloads(run)
server = servers(run)
examples(contract, server)
try_it(contract, dataset, server)
