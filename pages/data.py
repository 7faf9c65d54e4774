"""Data: pick a built-in dataset or upload one, then look at samples, classes and splits."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app import figures, state
from app.formatting import shape_text
from app.plain_text import md_escape
from core.data import list_datasets, load_dataset, register_upload, remove_upload
from core.data.uploads import OPTIONS
from core.errors import StudioError

PREVIEW_COUNT = 24
UPLOAD_KINDS = {  # kind -> (what a person picks, accepted file types, what the file must hold)
    "csv": ("Table (CSV)", ["csv"], "One row per sample; a label column, the rest numbers."),
    "images": (
        "Images (zip)",
        ["zip"],
        "A zip with one folder per class, each holding that class's images.",
    ),
    "text": ("Text (CSV)", ["csv"], "One row per sample: a text column and a label column."),
}


@st.cache_data(ttl=10, show_spinner=False)
def dataset_infos() -> dict:
    return {info.name: info for info in list_datasets()}


@st.cache_resource(max_entries=3, show_spinner="Loading the dataset…")
def dataset(name: str):
    """Datasets are read-only tensors: one copy shared by every session."""
    return load_dataset(name)


def add_upload() -> None:
    kind = state.get(state.UPLOAD_KIND)
    generation = state.get(state.UPLOAD_GENERATION, 0)
    upload = state.get(state.upload_file_key(generation))
    if upload is None:
        state.notify(state.DATA_NOTICE, "error", "Choose a file to upload first.")
        return
    options = {}
    for key, option in OPTIONS[kind].items():
        value = state.get(f"{state.UPLOAD_OPTION}{kind}.{key}")
        if value not in (None, "") and value != option.default:
            options[key] = value
    name = (state.get(state.UPLOAD_NAME) or "").strip() or None
    with tempfile.TemporaryDirectory(prefix="studio-upload-") as folder:
        path = Path(folder) / Path(upload.name).name  # never trust a client path
        path.write_bytes(upload.getvalue())
        try:
            info = register_upload(kind, path, name=name, **options)
        except StudioError as error:
            state.notify(state.DATA_NOTICE, "error", f"Upload refused: {error}")
            return
    dataset_infos.clear()
    state.put(state.DATA_CHOICE, info.name)
    # a clean form for the next upload: its name comes from its own file, not this one's
    state.put(state.UPLOAD_NAME, "")
    state.put(state.UPLOAD_GENERATION, generation + 1)
    state.notify(
        state.DATA_NOTICE,
        "success",
        f"Added “{info.name}”: {sum(info.sizes.values())} samples, "
        f"{info.num_classes} {'classes' if info.task == 'classification' else 'output'}.",
    )


def delete_upload(name: str) -> None:
    try:
        remove_upload(name)
    except StudioError as error:
        state.notify(state.DATA_NOTICE, "error", str(error))
        return
    dataset_infos.clear()
    dataset.clear()
    state.pop(state.DATA_CHOICE)
    state.notify(state.DATA_NOTICE, "success", f"Removed the upload “{name}”.")


def upload_form() -> None:
    kind = st.radio(
        "What are you uploading?",
        list(UPLOAD_KINDS),
        format_func=lambda k: UPLOAD_KINDS[k][0],
        horizontal=True,
        key=state.UPLOAD_KIND,
    )
    label, types, what = UPLOAD_KINDS[kind]
    st.caption(what + " Checked on the server for type, size and content before it is kept.")
    st.file_uploader(
        label, type=types, key=state.upload_file_key(state.get(state.UPLOAD_GENERATION, 0))
    )
    st.text_input(
        "Name",
        key=state.UPLOAD_NAME,
        placeholder="from the file name",
        help="Lowercase letters, digits, _ . - ; this is how the dataset is picked later.",
    )
    columns = st.columns(2)
    for position, (key, option) in enumerate(OPTIONS[kind].items()):
        widget_key = f"{state.UPLOAD_OPTION}{kind}.{key}"
        with columns[position % 2]:
            if option.kind == "choice":
                st.selectbox(key, option.choices, key=widget_key, help=option.help or None)
            elif option.kind == "bool":
                st.toggle(key, value=bool(option.default), key=widget_key, help=option.help or None)
            elif option.kind == "int":
                st.number_input(
                    key,
                    value=option.default,
                    min_value=option.minimum,
                    max_value=option.maximum,
                    step=1,
                    key=widget_key,
                    help=option.help or None,
                )
            else:
                st.text_input(key, key=widget_key, placeholder="automatic", help=option.help)
    st.button("Add dataset", type="primary", on_click=add_upload, key=state.DATA_ADD)


def summary(info) -> None:
    cols = st.columns(5)
    cols[0].metric("Task", info.task)
    cols[1].metric("Kind", info.modality)
    cols[2].metric("Sample shape", shape_text(info.sample_shape))
    cols[3].metric(
        "Classes" if info.task == "classification" else "Outputs",
        info.num_classes,
    )
    cols[4].metric("Samples", f"{sum(info.sizes.values()):,}")
    st.caption(
        "Splits: "
        + " · ".join(f"{split} {count:,}" for split, count in info.sizes.items())
        + (f" — {md_escape(info.description)}" if getattr(info, "description", "") else "")
    )


def preview(data) -> None:
    split = data.train
    count = min(PREVIEW_COUNT, len(split))
    rng = np.random.default_rng(0)
    picks = np.sort(rng.choice(len(split), size=count, replace=False)) if count else []
    samples = [data.human(split.x[int(i)]) for i in picks]
    labels = [data.label_name(split.y[int(i)]) for i in picks]
    if data.modality == "image":
        st.plotly_chart(
            figures.image_grid_figure(samples, labels, columns=8),
            key=state.DATA_GRID,
            config={"displayModeBar": False},
        )
    elif data.modality == "signal":
        st.plotly_chart(
            figures.signal_figure(samples[:12], labels[:12], columns=4),
            key=state.DATA_SIGNALS,
            config={"displayModeBar": False},
        )
    elif data.modality == "text":
        st.dataframe(
            pd.DataFrame({"label": labels, "text": samples}), hide_index=True, key=state.DATA_TEXT
        )
    else:
        table = pd.DataFrame(samples)
        table.insert(0, "label", labels)
        st.dataframe(table, hide_index=True, key=state.DATA_TABLE)


def balance(data) -> None:
    if data.task != "classification":
        st.caption("A regression dataset has no classes to balance.")
        return
    classes = len(data.class_names)
    counts = {
        name: np.bincount(np.asarray(split.y), minlength=classes).tolist()
        for name, split in (("train", data.train), ("val", data.val), ("test", data.test))
        if len(split)
    }
    st.plotly_chart(
        figures.class_balance_figure(counts, data.class_names),
        key=state.DATA_BALANCE,
        config={"displayModeBar": False},
    )


def main() -> None:
    st.header("Data", anchor=False)
    st.caption("Choose a dataset to look at, or add your own.")
    state.show_notice(state.DATA_NOTICE)
    try:
        infos = dataset_infos()
    except StudioError as error:
        st.error(md_escape(error))
        return
    picker, uploader = st.columns([2, 1], gap="large")
    # a keyed expander keeps its own open / closed state: without a key it is redrawn closed
    # whenever the elements above it change (a notice appearing after an upload)
    with (
        uploader,
        st.expander(
            "Upload a dataset", icon=":material/upload:", key=state.UPLOAD_PANEL, on_change="rerun"
        ),
    ):
        upload_form()
    if not infos:
        st.info("No dataset is available yet.")
        return
    if state.get(state.DATA_CHOICE) not in infos:
        state.put(state.DATA_CHOICE, "digits" if "digits" in infos else next(iter(infos)))

    def label(name: str) -> str:
        info = infos[name]
        note = "" if getattr(info, "available", True) else " (not downloaded)"
        return f"{name} — {info.modality}, {shape_text(info.sample_shape)}{note}"

    with picker:
        name = st.selectbox("Dataset", list(infos), format_func=label, key=state.DATA_CHOICE)
    info = infos[name]
    summary(info)
    if getattr(info, "source", "") == "upload":
        st.button(
            f"Remove the upload “{name}”",
            on_click=delete_upload,
            args=(name,),
            key=state.DATA_REMOVE,
            icon=":material/delete:",
        )
    try:
        data = dataset(name)
    except StudioError as error:
        st.error(md_escape(error))
        return
    samples, classes = st.tabs(["Samples", "Class balance"])
    with samples:
        preview(data)
    with classes:
        balance(data)


try:
    main()
except StudioError as error:  # the last net: a message a person can act on, never a traceback
    st.error(md_escape(error))
