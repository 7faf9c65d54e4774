"""Build: assemble a model from blocks and see its shapes, parameters, errors and code live."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import streamlit as st

from app import canvas_graph, figures, fixes, spec_editor, state, widgets
from app.components import canvas
from app.formatting import count_text, parse_int_list, shape_text
from app.plain_text import md_escape
from core import builder, codegen, importer, runs, templates
from core.advice import advise
from core.builder import Trace
from core.data import list_datasets
from core.errors import StudioError
from core.facts import ModelFacts
from core.layers import LAYERS, layers_by_family


@st.cache_data(ttl=15, show_spinner=False)
def dataset_infos() -> dict:
    return {info.name: info for info in list_datasets()}


@st.cache_data(ttl=300, show_spinner=False)
def template_list() -> list:
    return list(templates.list_templates())


def stem_of(layer_type: str) -> str:
    known = LAYERS.get(layer_type)
    return known.short if known else layer_type.lower()


# ---- the draft -------------------------------------------------------------------------------


def load_draft() -> spec_editor.Draft:
    """The spec being edited: from the session, else a saved spec or the draft in the URL."""
    draft = state.get(state.DRAFT)
    if draft is not None:
        return draft
    spec = None
    try:
        opened = state.query_param(state.QP_SPEC)
        encoded = state.query_param(state.QP_DRAFT)
        if opened:
            name, _, version = opened.partition("@")
            spec = runs.get_spec(name, version=int(version) if version else None).spec
        elif encoded:
            spec = spec_editor.decode(encoded)
        draft = spec_editor.from_spec(spec) if spec else spec_editor.Draft()
    except (StudioError, ValueError) as error:
        state.notify(state.NOTICE, "error", str(error))
        draft = spec_editor.Draft()
    replace_draft(draft)
    return draft


def replace_draft(draft: spec_editor.Draft) -> None:
    """Put a whole new document in the editor (template, import, saved version, the URL). It
    opens on the dataset it names; else a spec with an input shape opens on the dataset of
    that shape (the one its name starts with, if several), else on that shape typed in."""
    state.put(state.DRAFT, draft)
    state.put(state.INSERT_AFTER, None)
    state.put(state.INPUT_SOURCE, input_of(draft, dataset_infos()))
    shape = draft.extra.get("input_shape")
    if shape:
        state.put(state.INPUT_SHAPE_TEXT, ", ".join(str(d) for d in shape))


def available(infos: dict) -> list[str]:
    return [name for name, info in infos.items() if getattr(info, "available", True)]


def input_of(draft: spec_editor.Draft, infos: dict) -> str:
    """The Input choice a draft stands for: the dataset it names (when it is still there),
    else the dataset of its input shape, else that shape typed in, else digits."""
    options = available(infos)
    named = spec_editor.dataset_of(draft)
    if named in options:
        return named
    shape = draft.extra.get("input_shape")
    if not shape:
        return "digits" if "digits" in options else (options or [state.CUSTOM_INPUT])[0]
    matching = [name for name in options if list(infos[name].sample_shape) == list(shape)]
    matching.sort(key=lambda name: not draft.name.startswith(name))
    return matching[0] if matching else state.CUSTOM_INPUT


def add_block(layer_type: str) -> None:
    known = LAYERS[layer_type]
    layer = {"type": layer_type}
    layer.update({p.name: p.default for p in known.params if p.required and p.default is not None})
    draft = state.get(state.DRAFT)
    after = state.get(state.INSERT_AFTER)
    uid = spec_editor.insert(draft, layer, after=after)
    if after is not None:
        state.put(state.INSERT_AFTER, uid)  # the next block goes after this one


def open_template() -> None:
    chosen = state.get(state.TEMPLATE_CHOICE)
    for template in template_list():
        if template.name == chosen:
            draft = spec_editor.from_spec(template.spec)
            replace_draft(draft)
            state.notify(state.NOTICE, "success", f"Started from the template “{chosen}”.")


def open_saved() -> None:
    chosen = state.get(state.SAVED_CHOICE)
    if not chosen:
        return
    name, version = chosen
    try:
        saved = runs.get_spec(name, version=version)
        replace_draft(spec_editor.from_spec(saved.spec))
        state.notify(state.NOTICE, "success", f"Opened “{name}” version {version}.")
    except StudioError as error:
        state.notify(state.NOTICE, "error", str(error))


def new_model() -> None:
    replace_draft(spec_editor.Draft())


def save_version(spec: dict) -> None:
    # an empty box (Streamlit drops a widget's value on some reruns) saves under the model's name
    name = (state.get(state.SAVE_NAME) or "").strip() or state.get(state.DRAFT).name.strip()
    if not name:
        state.notify(state.NOTICE, "error", "Give the model a name before saving it.")
        return
    try:
        spec = {**spec, "name": name}
        saved = runs.save_spec(name=name, spec=spec)
        state.get(state.DRAFT).name = name
        state.notify(state.NOTICE, "success", f"Saved “{saved.name}” as version {saved.version}.")
    except StudioError as error:
        state.notify(state.NOTICE, "error", f"Not saved: {error}")


def import_upload() -> None:
    upload = state.get(state.IMPORT_FILE)
    if upload is None:
        return
    content = upload.getvalue()
    digest = hashlib.sha256(content).hexdigest()
    if digest == state.get(state.IMPORT_DIGEST):
        return
    state.put(state.IMPORT_DIGEST, digest)
    try:
        spec = spec_editor.parse_json(content, source=upload.name)
        replace_draft(spec_editor.from_spec(spec))
        state.notify(state.NOTICE, "success", f"Imported {upload.name}.")
    except StudioError as error:
        state.notify(state.NOTICE, "error", f"Not imported: {error}")


def import_code() -> None:
    """Turn PyTorch source (pasted, or a .py file) into a spec. The code is run (its class is
    instantiated and traced), so this happens only when the person presses the button."""
    upload = state.get(state.CODE_IMPORT_FILE)
    text = state.get(state.CODE_IMPORT_TEXT) or ""
    source, where = (
        (upload.getvalue(), upload.name) if upload is not None else (text, "pasted code")
    )
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError:
            state.notify(state.NOTICE, "error", f"Not imported: {where} is not UTF-8 text.")
            return
    if not source.strip():
        state.notify(state.NOTICE, "error", "Paste PyTorch code or choose a .py file first.")
        return
    try:
        imported = importer.import_source(
            source,
            class_name=(state.get(state.CODE_IMPORT_CLASS) or "").strip() or None,
            filename=where,
            assumed_shape=current_input_shape(),
        )
        replace_draft(spec_editor.from_spec(imported.spec))
        said = f"Imported {imported.class_name} from {where}."
        if imported.notes:
            state.notify(state.NOTICE, "warning", f"{said} Note: {'; '.join(imported.notes)}")
        else:
            state.notify(state.NOTICE, "success", said)
    except StudioError as error:
        state.notify(state.NOTICE, "error", f"Not imported: {error}")


def current_input_shape() -> tuple[int, ...] | None:
    """The sample shape of the Input chosen on the page (a dataset's, or the one typed in)."""
    source = state.get(state.INPUT_SOURCE)
    infos = dataset_infos()
    if source in infos:
        return tuple(infos[source].sample_shape)
    try:
        return tuple(parse_int_list(state.get(state.INPUT_SHAPE_TEXT) or "")) or None
    except ValueError:
        return None


def history() -> canvas_graph.History:
    """Undo / redo: the last versions of the spec, whichever editor changed it."""
    kept = state.get(state.BUILD_HISTORY)
    if kept is None:
        kept = canvas_graph.History()
        state.put(state.BUILD_HISTORY, kept)
    return kept


def step_history(op: str) -> None:
    spec = history().undo() if op == "undo" else history().redo()
    if spec is not None:
        replace_draft(spec_editor.from_spec(spec))


def on_canvas_action() -> None:
    """One gesture on the canvas, applied to the spec before the page is drawn."""
    action = canvas.action_of(state.BUILD_CANVAS)
    if action is None:
        return
    op = action.get("op")
    try:
        if op == "select":
            state.put(state.CANVAS_SELECTED, action.get("uid"))
        elif op == "layout":
            state.put(state.CANVAS_DIRECTION, action.get("direction"))
        elif op in ("undo", "redo"):
            step_history(op)
        else:
            canvas_graph.apply_action(state.get(state.DRAFT), action, stem_of=stem_of)
    except StudioError as error:
        state.notify(state.NOTICE, "error", f"Not changed: {error}")


def selected_block(draft: spec_editor.Draft) -> str | None:
    uid = state.get(state.CANVAS_SELECTED)
    return uid if any(b.uid == uid for b in draft.blocks) else None


# ---- the input the model is built for ----------------------------------------------------------


def choose_input(draft: spec_editor.Draft, infos: dict) -> ModelFacts:
    """Input shape, classes and vocabulary: from a dataset, or typed in. The choice belongs to
    the draft (its "dataset", or its input_shape), so it survives a reload and a page switch
    (which drops the box's own value)."""
    options = [*available(infos), state.CUSTOM_INPUT]
    if state.get(state.INPUT_SOURCE) not in options:
        state.put(state.INPUT_SOURCE, input_of(draft, infos))
    if state.get(state.INPUT_SHAPE_TEXT) is None and draft.extra.get("input_shape"):
        state.put(state.INPUT_SHAPE_TEXT, ", ".join(str(d) for d in draft.extra["input_shape"]))

    def label(name: str) -> str:
        if name == state.CUSTOM_INPUT:
            return "a shape I type in"
        info = infos[name]
        return f"{name} · {shape_text(info.sample_shape)} · {info.num_classes} classes"

    source = st.selectbox(
        "Input",
        options,
        format_func=label,
        key=state.INPUT_SOURCE,
        help="The data the model reads: a dataset (its sample shape and classes), or a shape.",
    )
    spec_editor.set_dataset(draft, None if source == state.CUSTOM_INPUT else source)
    if source != state.CUSTOM_INPUT:
        info = infos[source]
        if list(draft.extra.get("input_shape") or []) != list(info.sample_shape):
            draft.extra.pop("input_shape", None)  # the dataset decides the shape
        return info.facts
    shape_col, classes_col = st.columns([2, 1])
    text = shape_col.text_input(
        "Input shape (no batch)",
        key=state.INPUT_SHAPE_TEXT,
        placeholder="3, 32, 32",
        help="Channels, height, width for images; time, features for sequences.",
    )
    classes = classes_col.number_input(
        "Classes", min_value=1, max_value=100_000, value=10, key=state.NUM_CLASSES
    )
    shape = None
    if text.strip():
        try:
            shape = tuple(parse_int_list(text))
            draft.extra["input_shape"] = list(shape)
        except ValueError as error:
            st.error(f"Input shape: {md_escape(error)}")
    return ModelFacts.from_input_shape(shape, num_classes=int(classes))


# ---- page --------------------------------------------------------------------------------------


PALETTE_TITLES = {  # where a person looks: text input sits with the sequence layers
    "CNN": "CNN · images and signals",
    "RNN": "RNN · sequences and text",
    "Attention": "Attention · transformers",
    "Common": "Common",
}


def palette() -> None:
    with st.sidebar:
        st.subheader("Palette")
        draft = state.get(state.DRAFT)
        after = state.get(state.INSERT_AFTER)
        if after is not None and any(b.uid == after for b in draft.blocks):
            index = draft.index_of(after)
            st.caption(f"New blocks go after **{index}. {md_escape(draft.blocks[index].type)}**.")
        else:
            st.caption("New blocks go at the end. Click ⤵ on a block to add after it instead.")
        for family, layer_types in layers_by_family().items():
            with st.expander(PALETTE_TITLES.get(family, family), expanded=family == "CNN"):
                for layer_type in layer_types:
                    st.button(
                        layer_type.name,
                        key=state.palette_key(layer_type.name),
                        on_click=add_block,
                        args=(layer_type.name,),
                        help=layer_type.description,
                        width="stretch",
                    )
                    st.caption(layer_type.description)


def toolbar(draft: spec_editor.Draft, spec: dict) -> None:
    cols = st.columns(5)
    with cols[0].popover("Templates", icon=":material/auto_awesome:", width="stretch"):
        choices = template_list()
        if not choices:
            st.caption("No templates are installed.")
        else:
            names = [t.name for t in choices]
            st.selectbox("Template", names, key=state.TEMPLATE_CHOICE)
            chosen = next(t for t in choices if t.name == state.get(state.TEMPLATE_CHOICE))
            st.caption(chosen.description)
            st.button(
                "Start from this template", on_click=open_template, key=state.BUILD_USE_TEMPLATE
            )
        st.button("Start an empty model", on_click=new_model, key=state.BUILD_NEW)
    with cols[1].popover("Open saved", icon=":material/folder_open:", width="stretch"):
        try:
            saved = runs.list_specs(all_versions=True)
        except StudioError as error:
            saved = []
            st.error(md_escape(error))
        if not saved:
            st.caption("Nothing saved yet: save a version first.")
        else:
            labels = {(s.name, s.version): s for s in saved}
            st.selectbox(
                "Saved versions",
                list(labels),
                key=state.SAVED_CHOICE,
                format_func=lambda k: f"{k[0]} · v{k[1]} · {labels[k].created:%d %b %H:%M}",
            )
            st.button("Open this version", on_click=open_saved, key=state.BUILD_OPEN)
    with cols[2].popover("Save version", icon=":material/save:", width="stretch"):
        # follow the model's name; refill a box whose value Streamlit dropped (a rerun that
        # skipped this popover, a page switch)
        if state.get(state.SAVE_NAME_FOR) != draft.name or not state.get(state.SAVE_NAME):
            state.put(state.SAVE_NAME_FOR, draft.name)
            state.put(state.SAVE_NAME, draft.name)
        st.text_input("Name", key=state.SAVE_NAME, help="Saving a name again adds a new version.")
        st.button("Save", on_click=save_version, args=(spec,), key=state.BUILD_SAVE, type="primary")
    with cols[3].popover("Import", icon=":material/upload:", width="stretch"):
        st.file_uploader(
            "A model spec (.json)",
            type=["json"],
            key=state.IMPORT_FILE,
            on_change=import_upload,
            help="Checked on the server; the blocks in the editor are replaced.",
        )
        st.markdown("**Import PyTorch code**")
        st.caption(
            "An nn.Module class that takes no arguments, traced with torch.fx. Importing runs "
            "the code on this machine: import only code you trust."
        )
        st.text_area("Paste the code", key=state.CODE_IMPORT_TEXT, height=150)
        st.file_uploader("or a .py file", type=["py"], key=state.CODE_IMPORT_FILE)
        st.text_input(
            "Class", key=state.CODE_IMPORT_CLASS, placeholder="the last nn.Module in the code"
        )
        st.button("Import code", on_click=import_code, key=state.CODE_IMPORT_RUN)
    cols[4].download_button(
        "Export JSON",
        data=json.dumps(spec, indent=2),
        file_name=f"{draft.name or 'model'}.json",
        mime="application/json",
        icon=":material/download:",
        key=state.BUILD_EXPORT,
        width="stretch",
    )


def layer_table(result) -> pd.DataFrame:
    rows = [
        {
            "#": row.index,
            "block": row.type + (f" ({row.id})" if row.id else ""),
            "output shape": shape_text(row.output_shape),
            "params": int(row.params),
            "FLOPs": int(row.flops),
        }
        for row in result.layers
    ]
    return pd.DataFrame(rows, columns=["#", "block", "output shape", "params", "FLOPs"])


def diagram_blocks(draft: spec_editor.Draft, result) -> list[figures.DiagramBlock]:
    rows = {row.index: row for row in result.layers}
    error_index = getattr(result.error, "index", None) if result.error else None
    index_of_id = {b.id: i for i, b in enumerate(draft.blocks) if b.id}
    blocks = []
    for index, block in enumerate(draft.blocks):
        known = LAYERS.get(block.type)
        row = rows.get(index)
        if row is not None:
            status = "ok"
        elif index == error_index:
            status = "error"
        else:
            status = "unreached"
        inputs = block.layer.get("inputs")
        sources = (
            tuple(index_of_id[i] for i in inputs if i in index_of_id)
            if isinstance(inputs, list)
            else ()
        )
        hover = known.description if known else "unknown layer type"
        if row is not None:
            hover += f"<br>output {shape_text(row.output_shape)} · {row.params:,} params"
        blocks.append(
            figures.DiagramBlock(
                index=index,
                type=block.type,
                family=known.family if known else "Common",
                id=block.id,
                output_shape=tuple(row.output_shape) if row is not None else None,
                params=row.params if row is not None else None,
                sources=sources,
                status=status,
                hover=hover,
                frozen=bool(block.layer.get("frozen")),
            )
        )
    return blocks


def main() -> None:
    draft = load_draft()
    palette()
    st.header("Build a model", anchor=False)
    st.caption(
        "Add blocks from the palette on the left; shapes, parameters and code update as you go."
    )
    state.show_notice(state.NOTICE)

    infos = dataset_infos()
    top = st.columns([2, 3])
    name_key = state.model_name_key(draft.key)
    top[0].text_input(
        "Model name",
        value=draft.name,
        key=name_key,
        on_change=lambda: setattr(draft, "name", st.session_state[name_key]),
    )
    with top[1]:
        facts = choose_input(draft, infos)
    spec = spec_editor.to_spec(draft)
    mirror_in_url(spec)  # first thing: a reload while the page still draws keeps the edit
    toolbar(draft, spec)

    # no vocabulary known (a typed-in shape): a placeholder one, so a text model still shows
    # its shapes and its code (whose class then takes the real size as an argument)
    result = builder.trace(spec, facts.assume_vocabulary())
    rows = {row.index: row for row in result.layers}
    advice_on: dict[int, list] = {}
    for item in advise(result):
        advice_on.setdefault(item.index, []).append(item)
    error = result.error if draft.blocks else None  # an empty model is a start, not an error
    error_index = getattr(error, "index", None) if error else None

    history().observe(spec)
    selected = selected_block(draft)
    canvas.canvas(
        canvas_graph.graph_data(
            draft,
            result,
            input_shape=facts.input_shape,
            selected=selected,
            direction=state.get(state.CANVAS_DIRECTION) or "LR",
            can_undo=history().can_undo,
            can_redo=history().can_redo,
        ),
        key=state.BUILD_CANVAS,
        on_action=on_canvas_action,
    )

    editor, overview = st.columns([1.1, 1], gap="large")
    with editor:
        st.subheader(f"Blocks ({len(draft.blocks)})", anchor=False)
        undo, redo, show_all = st.columns(3)
        undo.button(
            "Undo",
            icon=":material/undo:",
            key=state.BUILD_UNDO,
            on_click=step_history,
            args=("undo",),
            disabled=not history().can_undo,
            width="stretch",
        )
        redo.button(
            "Redo",
            icon=":material/redo:",
            key=state.BUILD_REDO,
            on_click=step_history,
            args=("redo",),
            disabled=not history().can_redo,
            width="stretch",
        )
        if selected is not None:
            show_all.button(
                "Show every block",
                key=state.BUILD_SHOW_ALL,
                width="stretch",
                on_click=state.put,
                args=(state.CANVAS_SELECTED, None),
            )
            st.caption("The block selected on the canvas; click the canvas background to see all.")
        if error is not None and (error_index is None or error_index >= len(draft.blocks)):
            message = str(getattr(error, "message", None) or error)
            st.error(md_escape(fixes.in_words(message)), icon=":material/error:")
        if not draft.blocks:
            st.info(
                "This model is empty. Add a block from the palette on the left, or start from "
                "a template above."
            )
        for index, block in enumerate(list(draft.blocks)):
            if selected is not None and block.uid != selected:
                continue
            widgets.block_card(
                block,
                index=index,
                layer_type=LAYERS.get(block.type),
                row=rows.get(index),
                error=error if index == error_index else None,
                reached=error_index is None or index < error_index,
                earlier=draft.blocks[:index],
                stem_of=stem_of,
                advice=advice_on.get(index, ()),
            )
    with overview:
        st.subheader("Architecture", anchor=False)
        totals = st.columns(3)
        totals[0].metric("Parameters", count_text(result.params))
        totals[1].metric("FLOPs per sample", count_text(result.flops))
        last = result.layers[-1].output_shape if result.layers else None
        totals[2].metric("Output", shape_text(last) if last is not None else "—")
        if error is None and draft.blocks and advice_on:
            advised = ", ".join(str(i) for i in sorted(advice_on))
            st.warning(
                f"The model builds, but see the advice on block {advised}: it will not learn "
                "what it seems to.",
                icon=":material/lightbulb:",
            )
        elif error is None and draft.blocks:
            st.success("The model builds: every shape fits.", icon=":material/check_circle:")
        elif error is not None:
            where = f"block {error_index}" if error_index is not None else "the model"
            st.error(
                f"Problem at {md_escape(where)}: see the red message on it.",
                icon=":material/error:",
            )
        st.plotly_chart(
            figures.architecture_figure(
                diagram_blocks(draft, result), input_shape=facts.input_shape
            ),
            key=state.BUILD_DIAGRAM,
            config={"displayModeBar": False},
        )
        st.dataframe(layer_table(result), hide_index=True, key=state.BUILD_TABLE)
        with st.expander("PyTorch code", icon=":material/code:"):
            code_view(result, error)

    mirror_in_url(spec_editor.to_spec(draft))  # again, for a change made while drawing


def mirror_in_url(spec: dict) -> None:
    """The spec being edited, in the address bar: a reload or a shared link reopens it.
    Unchanged, nothing is sent."""
    state.set_query_param(state.QP_DRAFT, spec_editor.encode(spec))
    state.set_query_param(state.QP_SPEC, None)


def code_view(result: Trace, error: StudioError | None) -> None:
    """The model's PyTorch source, written from the trace the page already made."""
    if error is not None:
        st.caption("Fix the error first: the code is written from a model that builds.")
        return
    if not result.ok or not result.steps:
        st.caption("Add blocks to see their code.")
        return
    try:
        code = codegen.generate_code(result)
    except StudioError as problem:
        st.error(md_escape(problem))
        return
    if result.facts.vocab_assumed and codegen.vocabulary_from_data(result):
        st.caption(
            f"No vocabulary is known for a typed-in shape, so the Embedding counts "
            f"{result.facts.vocab_size:,} tokens: the class takes the real size as its "
            "`vocab_size` argument. Pick a text dataset as the input to use its vocabulary."
        )
    st.download_button(
        "Download model.py",
        data=code,
        file_name=f"{result.name or 'model'}.py",
        mime="text/x-python",
        key=state.BUILD_CODE_DOWNLOAD,
        icon=":material/download:",
    )
    st.code(code, language="python")


try:
    main()
except StudioError as error:  # the last net: a message a person can act on, never a traceback
    st.error(md_escape(error))
