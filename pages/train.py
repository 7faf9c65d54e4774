"""Train: choose a model, a dataset and settings, launch, and watch the run live."""

from __future__ import annotations

import hashlib
import json
import time

import streamlit as st

from app import explain_models, fit, init_picker, run_view, series, spec_editor, state, widgets
from app import live as live_curves
from app.formatting import shape_text
from app.plain_text import md_escape
from app.train_form import SCHEMA, chosen_settings, keep_form, on_screen, restore_form
from core import metric_catalog as catalog
from core import runs
from core.data import list_datasets
from core.errors import NotFoundError, StudioError
from core.states import RunRequest, RunStatus
from core.train.config import TrainConfig, applies, default_for
from core.train.devices import list_devices

POLL_S = 1.0  # how often the live panel reads new metrics while a run is active
ADVANCED_FIELDS = (
    "loss",
    "label_smoothing",
    "precision",
    "grad_clip",
    "early_stopping_patience",
    "log_every",
    "freeze_epochs",
    "body_lr_factor",
    "processes",
)
GUARD_S = 10.0  # the same launch again within this many seconds is a double click


@st.cache_data(ttl=15, show_spinner=False)
def dataset_infos() -> dict:
    return {info.name: info for info in list_datasets() if getattr(info, "available", True)}


@st.cache_data(ttl=60, show_spinner=False)
def local_devices() -> dict[str, str]:
    return {device.id: device.label for device in list_devices()}


def device_labels() -> dict[str, str]:
    """Devices a run can ask for: this machine's, and those of live workers elsewhere (name and
    memory as each worker reports them)."""
    labels = dict(local_devices())
    try:
        workers = runs.list_workers()
    except StudioError:
        workers = []
    for worker in workers:
        if worker.device:
            device_id = worker.device.split(" ", 1)[0]
            labels.setdefault(device_id, f"{worker.device} · worker on {worker.host}")
    return labels


# ---- choosing what to train --------------------------------------------------------------------


def spec_choices() -> dict[str, tuple[str, dict]]:
    """source key -> (label, spec): the model in Build (this session) and every saved spec."""
    choices = {}
    draft = state.get(state.DRAFT)
    if draft is not None and draft.blocks:
        choices[state.FROM_BUILD] = (f"{draft.name} (open in Build)", spec_editor.to_spec(draft))
    try:
        saved_specs = sorted(runs.list_specs(), key=lambda s: s.created, reverse=True)
        for saved in saved_specs:  # the most recently saved first
            choices[saved.name] = (f"{saved.name} (saved v{saved.version})", saved.spec)
    except StudioError as error:
        st.error(md_escape(error))
    return choices


def check_fit(spec: dict, info) -> tuple[bool, str]:
    """Whether the model builds for this dataset: (ok, a sentence); traced once (app.fit)."""
    check = fit.check_fit(spec, info)
    return check.ok, check.message


def settings_form() -> None:
    """One widget per TrainConfig field that matters for the choices made; the values are read
    back from the session by `chosen_settings` (also inside the Launch callback). Which settings
    an optimizer or schedule reads, and their defaults there, come from the schema."""

    def field(name: str, column=None) -> None:
        entry = SCHEMA[name]
        if "depends_on" in entry:  # e.g. momentum: 0.9 for sgd, 0 for rmsprop
            entry = {**entry, "default": default_for(name, on_screen())}
        with column or st.container():
            widgets.setting_input(entry, key=state.TRAIN_SETTING + name)

    def own_settings(choice: str) -> None:
        """The settings that only some choices of `choice` read, when the current one does."""
        names = [
            name
            for name, entry in SCHEMA.items()
            if entry.get("depends_on") == choice and applies(name, on_screen())
        ]
        if names:
            columns = st.columns(len(names))
            for position, name in enumerate(names):
                field(name, columns[position])

    length_col, count_col, batch_col = st.columns(3)
    with length_col:
        length = st.radio("Train for", ["epochs", "steps"], horizontal=True, key=state.TRAIN_LENGTH)
    if length == "epochs":
        field("epochs", count_col)
    else:
        with count_col:
            widgets.setting_input(
                {**SCHEMA["steps"], "default": 200}, key=state.TRAIN_SETTING + "steps"
            )
    field("batch_size", batch_col)

    optimizer_col, lr_col = st.columns(2)
    field("optimizer", optimizer_col)
    field("lr", lr_col)
    own_settings("optimizer")

    scheduler_col, seed_col = st.columns(2)
    field("scheduler", scheduler_col)
    field("seed", seed_col)
    own_settings("scheduler")

    labels = device_labels()
    if state.get(state.TRAIN_SETTING + "device", "auto") not in ("auto", *labels):
        state.pop(state.TRAIN_SETTING + "device")  # a kept device this machine no longer has
    st.selectbox(
        "Device",
        ["auto", *labels],
        format_func=lambda d: "auto (GPU when there is one)" if d == "auto" else labels[d],
        key=state.TRAIN_SETTING + "device",
        help=SCHEMA["device"]["help"],
    )
    with st.expander("Advanced settings"):
        columns = st.columns(2)
        for position, name in enumerate(ADVANCED_FIELDS):
            field(name, columns[position % 2])


# ---- the form survives a page switch and a reload --------------------------------------------
def workers_caption(key: str) -> None:
    try:
        alive = runs.list_workers()
    except StudioError:
        alive = []
    if alive:
        devices = ", ".join(sorted({w.device or "?" for w in alive}))
        st.caption(f"{len(alive)} worker{'s' if len(alive) > 1 else ''} ready · {devices}")
        able_caption(alive)
    else:
        st.warning(
            "No worker is running, so runs wait in the queue. Start one here or with "
            "`studio worker` in a terminal.",
            icon=":material/warning:",
        )
        st.button("Start a local worker", on_click=start_worker, key=key)


def able_caption(alive: list) -> None:
    """Which live workers can train the device and processes chosen (they alone claim it)."""
    wanted = {
        "device": state.get(state.TRAIN_SETTING + "device", "auto"),
        "processes": state.get(state.TRAIN_SETTING + "processes", 1) or 1,
    }
    if wanted["device"] in ("auto", "cpu") and int(wanted["processes"]) == 1:
        return
    able = runs.workers_able(wanted)
    hosts = ", ".join(sorted({w.host for w in able}))
    if able:
        st.caption(f"{len(able)} of {len(alive)} can train {wanted['processes']} process(es) "
                   f"on {wanted['device']}: {hosts}")  # fmt: skip
    else:
        st.warning(
            f"No live worker can train {wanted['processes']} process(es) on "
            f"{wanted['device']}; the run waits until one that can starts.",
            icon=":material/warning:",
        )


def start_worker() -> None:
    try:
        started = runs.ensure_local_worker()
    except StudioError as error:
        state.notify(state.TRAIN_NOTICE, "error", str(error))
        return
    state.notify(
        state.TRAIN_NOTICE,
        "success",
        "A worker is starting." if started else "A worker is already running.",
    )


def launch() -> None:
    """Queue one run from what is on screen now. The same launch again within GUARD_S seconds
    (a double click, a repeated request) shows the run already queued instead of another."""
    source = state.get(state.TRAIN_SPEC_SOURCE)
    dataset = state.get(state.TRAIN_DATASET)
    choices = spec_choices()
    if source not in choices or not dataset:
        state.notify(state.TRAIN_NOTICE, "error", "Choose a model and a dataset first.")
        return
    spec = choices[source][1]
    try:
        settings = chosen_settings()
    except ValueError as error:
        state.notify(state.TRAIN_NOTICE, "error", f"Not launched: {error}")
        return
    fingerprint = hashlib.sha256(
        json.dumps(
            [spec, dataset, settings, state.get(state.TRAIN_INIT_FROM)], sort_keys=True, default=str
        ).encode()
    ).hexdigest()
    guard = state.get(state.LAUNCH_GUARD) or {}
    if guard.get("fingerprint") == fingerprint and time.time() - guard.get("at", 0) < GUARD_S:
        state.put(state.WATCH_REQUEST, guard["run_id"])
        return
    try:
        config = TrainConfig.from_dict(settings)
        from_build = source == state.FROM_BUILD
        spec_name = (spec.get("name") or "my-model") if from_build else source
        info = dataset_infos().get(dataset)
        checked = fit.check_fit(spec, info).traced if info is not None else None  # no retrace
        run_id = runs.submit_run(
            spec=spec,
            dataset=dataset,
            config=config,
            spec_name=spec_name,
            checked=checked,
            **init_picker.chosen_lineage(),  # "Start from run…"
        )
        saved_note = keep_build_model(spec_name, spec) if from_build else ""
    except StudioError as error:
        state.notify(state.TRAIN_NOTICE, "error", f"Not launched: {error}")
        return
    state.put(state.LAUNCH_GUARD, {"fingerprint": fingerprint, "at": time.time(), "run_id": run_id})
    state.put(state.WATCH_REQUEST, run_id)
    # a toast, not a banner: the page is not redrawn when the run starts, so a banner saying
    # "queued" would stay above a running run (the live panel's badge says where it is)
    state.put(state.TRAIN_LAUNCHED, f"Run {run_id} is queued.{saved_note}")


def keep_build_model(name: str, spec: dict) -> str:
    """Save the model from Build as a version when it differs from the latest one of its name,
    so it can be picked again after a reload; returns a sentence saying so (or nothing)."""
    try:
        latest = runs.get_spec(name)
    except NotFoundError:
        latest = None
    if latest is not None and latest.spec == spec:
        return ""
    saved = runs.save_spec(name=name, spec=spec)
    return f" Its model is saved as “{saved.name}” version {saved.version}."


# ---- the live run ------------------------------------------------------------------------------


def refresh_curves(run) -> series.LiveCurves:
    """The run's curves from the server's one cache (new rows since the last poll merged in)."""
    live = live_curves.read_curves(run)
    state.put(state.LIVE_CURVES, live)
    return live


def live_figure(live: series.LiveCurves):
    """The curves figure, rebuilt only when the last poll brought new rows."""
    key = live_curves.figure_key(live)
    cached = state.get(state.LIVE_FIGURE)
    if cached is None or cached[0] != key:
        cached = (key, live_curves.curves_figure(live))
        state.put(state.LIVE_FIGURE, cached)
    return cached[1]


def control(action: str, run_id: int) -> None:
    try:
        runs.apply_request(run_id, action)
    except StudioError as error:  # shown by the live panel, which is what reruns now
        state.notify(state.LIVE_NOTICE, "error", str(error))


def live_panel(run_id: int) -> None:
    """The run's status, progress and curves; reruns on its own every POLL_S while active."""
    try:
        run = runs.get_run(run_id)
        live = refresh_curves(run)
    except StudioError as error:
        st.error(md_escape(error))
        return
    state.show_notice(state.LIVE_NOTICE)
    colour, meaning = run_view.status_look(run.status)
    head, buttons = st.columns([3, 2], vertical_alignment="center")
    head.markdown(
        f"#### Run {run.id} :{colour}-badge[{run_view.status_word(run.status)}]\n"
        f"{md_escape(run.spec_name or 'model')} on **{md_escape(run.dataset)}** · {meaning}"
        + (f" · {md_escape(run.device)}" if run.device else "")
    )
    head.caption(run_view.settings_text(run.settings))
    offered = run_view.offered_requests(run)
    with buttons.container(horizontal=True, horizontal_alignment="right"):
        for request, label, icon in (
            (RunRequest.PAUSE, "Pause", ":material/pause:"),
            (RunRequest.RESUME, "Resume", ":material/play_arrow:"),
            (RunRequest.STOP, "Stop", ":material/stop:"),
        ):
            st.button(
                label,
                key=state.TRAIN_REQUEST + request,
                on_click=control,
                args=(request, run.id),
                disabled=not offered[request],
                icon=icon,
            )
    st.progress(run.progress, text=run_view.progress_text(run, live.latest))
    if run.requested_action:
        st.caption(f"Asked to {run.requested_action}: the worker obeys between two steps.")
    if run.status == RunStatus.FAILED and run.error:
        st.error(md_escape(run.error))
    if run.status == RunStatus.QUEUED:
        workers_caption(state.TRAIN_START_WORKER_LIVE)
    st.plotly_chart(live_figure(live), key=state.TRAIN_CURVES, config={"displayModeBar": False})
    st.caption(run_view.recorded_caption(live.recorded))
    if run.status == RunStatus.COMPLETED:
        verdict = chance_verdict(run, live)
        if verdict is not None:
            st.warning(verdict.text, icon=":material/trending_flat:")
        results(run)
    changed = run_view.activity_changed(state.get(state.WAS_ACTIVE), run)
    state.put(state.WAS_ACTIVE, run.is_active)
    if changed:
        st.rerun()  # polling starts or stops with the run: redraw the whole page once


def chance_verdict(run, live: series.LiveCurves):
    """Whether the finished run never left chance level, from every loss it recorded."""
    info = dataset_infos().get(run.dataset)
    num_classes = info.num_classes if info is not None and info.task == "classification" else None
    losses = [
        float(value)
        for name in (catalog.TRAIN_LOSS, catalog.VAL_LOSS)
        if name in live.curves
        for value in live.curves[name].values
    ]
    if info is not None and info.task != "classification":
        return None
    return run_view.chance_verdict(run, num_classes, losses)


def results(run) -> None:
    explain_models.prepare(run.id, run.step)  # "why?" is the next question: load it now
    for column, (label, text) in zip(st.columns(4), run_view.result_numbers(run), strict=True):
        column.metric(label, text)
    st.page_link(
        state.PAGE_RUNS,
        label="Confusion matrix and comparisons on the Runs page",
        icon=":material/monitoring:",
        query_params={state.QP_RUN: str(run.id)},
    )


def watched_run() -> int | None:
    """The run on screen: the one a callback just asked for, else the one in the URL."""
    requested = state.pop(state.WATCH_REQUEST)
    if requested is None and state.query_param(state.QP_RUN) is None:
        requested = state.get(state.TRAIN_WATCHED)  # back from another page: the same run
    if requested is not None:
        state.set_query_param(state.QP_RUN, str(requested), force=True)
    text = state.query_param(state.QP_RUN)
    watched = int(text) if text and text.isdigit() else None
    state.put(state.TRAIN_WATCHED, watched)
    return watched


def watch_picker(current: int | None) -> None:
    try:
        recent = runs.list_runs(limit=20)
    except StudioError:
        return
    if not recent:
        return
    labels = {r.id: f"run {r.id} · {r.spec_name or 'model'} on {r.dataset}" for r in recent}
    if current is not None and current not in labels:  # an older run, named in the URL
        labels = {current: f"run {current}", **labels}
    options = list(labels)

    def switch() -> None:
        state.put(state.WATCH_REQUEST, state.get(state.WATCH_CHOICE))

    if state.get(state.WATCH_CHOICE) != current:  # the box shows the run below it, or none
        state.put(state.WATCH_CHOICE, current)
    st.selectbox(
        "Watching",
        options,
        format_func=labels.get,
        index=None,  # nothing claimed until a run is on screen
        key=state.WATCH_CHOICE,
        on_change=switch,
        placeholder="choose a run to watch",
    )


def main() -> None:
    st.header("Train", anchor=False)
    st.caption("Launch a run on a background worker, then watch its curves live.")
    state.show_notice(state.TRAIN_NOTICE)
    launched = state.pop(state.TRAIN_LAUNCHED)
    if launched:
        st.toast(md_escape(launched), icon=":material/rocket_launch:")
    restore_form()
    setup, watch = st.columns([1, 1.6], gap="large")
    with setup:
        st.subheader("What to train", anchor=False)
        choices = spec_choices()
        infos = dataset_infos()
        if not choices:
            st.info("Build a model first (Build page), or save one there.")
            st.page_link(state.PAGE_BUILD, label="Open Build", icon=":material/construction:")
        if not infos:
            st.error("No dataset is available.")
        if choices and infos:
            if state.get(state.TRAIN_SPEC_SOURCE) not in choices:
                state.pop(state.TRAIN_SPEC_SOURCE)
            st.selectbox(
                "Model",
                list(choices),
                format_func=lambda k: choices[k][0],
                key=state.TRAIN_SPEC_SOURCE,
            )  # a kept source no longer offered was dropped above
            source = state.get(state.TRAIN_SPEC_SOURCE)
            if state.get(state.TRAIN_DATASET) not in infos:
                # the model's own dataset (Build's Input, kept in the spec) comes first
                preferred = spec_editor.dataset_of(choices[source][1]) or state.get(
                    state.INPUT_SOURCE
                )
                state.put(
                    state.TRAIN_DATASET,
                    preferred
                    if preferred in infos
                    else "digits"
                    if "digits" in infos
                    else next(iter(infos)),
                )
            dataset = st.selectbox(
                "Dataset",
                list(infos),
                key=state.TRAIN_DATASET,
                format_func=lambda n: f"{n} · {shape_text(infos[n].sample_shape)}",
            )
            spec = choices[source][1]
            fits, message = check_fit(spec, infos[dataset])
            (st.success if fits else st.error)(message)
            init_picker.init_picker(spec, dataset)
            st.subheader("Settings", anchor=False)
            settings_form()
            st.button(
                "Launch training",
                type="primary",
                icon=":material/rocket_launch:",
                disabled=not fits,
                on_click=launch,
                key=state.TRAIN_LAUNCH,
                width="stretch",
            )
            workers_caption(state.TRAIN_START_WORKER)
            keep_form()
    with watch:
        run_id = watched_run()
        watch_picker(run_id)
        if run_id is None:
            st.info(
                "Launch a run to watch it here. Its address stays valid: reload, share it "
                "with a second tab, or come back later."
            )
            return
        try:
            active = runs.get_run(run_id).is_active
        except StudioError as error:
            st.error(md_escape(error))
            return
        state.put(state.WAS_ACTIVE, active)
        st.fragment(run_every=POLL_S if active else None)(live_panel)(run_id)


try:
    main()
except StudioError as error:  # the last net: a message a person can act on, never a traceback
    st.error(md_escape(error))
