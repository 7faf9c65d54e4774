"""Sweep: search settings and block arguments with Optuna; the workers train the trials.

Define a sweep (model, dataset, base settings, parameters, objective, budget), watch its trials
live with the best-so-far curve and Optuna's figures, and "Use the best": the best trial's model
opens in Build and its settings on Train.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import spec_editor, state, sweep_view, widgets
from app.plain_text import md_escape
from core import runs
from core.data import list_datasets
from core.errors import StudioError
from core.states import ACTIVE, RunStatus, SweepStatus
from core.sweeps import study as studies
from core.sweeps.create import create_sweep
from core.sweeps.objective import OBJECTIVES
from core.sweeps.queue import live_workers, stop_sweep
from core.sweeps.status import best_so_far, best_trial, get_sweep, list_sweeps, trial_views
from core.train.config import TrainConfig

POLL_S = 2.0  # the trials table refreshes this often while the sweep runs
BASE_SETTINGS = ("epochs", "batch_size", "optimizer", "lr", "seed")  # shown in the form
SCHEMA = {entry["name"]: entry for entry in TrainConfig.schema()}


RECENT_RUNS = 20  # finished runs offered as a model to search


def spec_choices() -> dict[str, tuple[str, dict]]:
    """source key -> (label, spec): the model in Build (this session), every saved spec, and
    the models of the latest finished runs."""
    choices = {}
    draft = state.get(state.DRAFT)
    if draft is not None and draft.blocks:
        choices[state.FROM_BUILD] = (f"{draft.name} (open in Build)", spec_editor.to_spec(draft))
    for saved in sorted(runs.list_specs(), key=lambda s: s.created, reverse=True):
        choices[saved.name] = (f"{saved.name} (saved v{saved.version})", saved.spec)
    for run in runs.list_runs(status=RunStatus.COMPLETED, limit=RECENT_RUNS):
        label = f"run {run.id}'s model ({run.spec_name or 'unnamed'}, trained on {run.dataset})"
        choices[f"{state.FROM_RUN}{run.id}"] = (label, run.spec)
    return choices


def spec_name_of(source: str) -> str | None:
    """The saved name a sweep's trials carry: the saved spec's, or the finished run's."""
    if source == state.FROM_BUILD:
        return None
    if source.startswith(state.FROM_RUN):
        return runs.get_run(int(source.removeprefix(state.FROM_RUN))).spec_name
    return source


def define() -> None:
    """The form that starts a sweep; nothing is queued unless every part is valid."""
    choices = spec_choices()
    if not choices:
        st.info(
            "Build a model, save one, or train one first: a sweep searches the settings of a model."
        )
        return
    datasets = [info.name for info in list_datasets() if getattr(info, "available", True)]
    model_col, data_col = st.columns(2)
    source = model_col.selectbox(
        "Model", list(choices), format_func=lambda k: choices[k][0], key=state.SWEEP_SPEC_SOURCE
    )
    dataset = data_col.selectbox("Dataset", datasets, key=state.SWEEP_DATASET)
    spec = choices[source][1]
    st.markdown("**Base settings** (every trial starts from these)")
    for column, name in zip(st.columns(len(BASE_SETTINGS)), BASE_SETTINGS, strict=True):
        with column:
            widgets.setting_input(SCHEMA[name], key=state.SWEEP_SETTING + name)
    if state.SWEEP_PARAMS not in st.session_state:
        state.put(state.SWEEP_PARAMS, sweep_view.EXAMPLE_PARAMS)
    st.text_area(
        "Parameters to search, one a line: NAME=LOW:HIGH (add :log for a log scale) or NAME=a,b,c",
        key=state.SWEEP_PARAMS,
        height=110,
    )
    with st.expander("What can be searched"):
        st.dataframe(
            pd.DataFrame(sweep_view.searchable(spec), columns=["name", "allows"]),
            hide_index=True,
            width="stretch",
        )
    objective_col, sampler_col, pruner_col, trials_col, minutes_col = st.columns(5)
    objective_col.selectbox(
        "Objective", ["default", *OBJECTIVES], key=state.SWEEP_OBJECTIVE,
        help="default: best validation accuracy (validation loss for regression)",
    )  # fmt: skip
    sampler_col.selectbox("Sampler", list(studies.SAMPLERS), key=state.SWEEP_SAMPLER)
    pruner_col.selectbox("Pruner", list(studies.PRUNERS), key=state.SWEEP_PRUNER)
    trials_col.number_input("Trials", min_value=1, value=16, step=1, key=state.SWEEP_TRIALS)
    minutes_col.number_input(
        "Time limit (min, 0 = none)", min_value=0.0, value=0.0, key=state.SWEEP_MINUTES
    )
    st.caption(f"Trials run {live_workers()} at a time: one per live worker.")
    if st.button("Start the sweep", key=state.SWEEP_START, type="primary"):
        start(spec, source, dataset)


def start(spec: dict, source: str, dataset: str) -> None:
    settings = {
        name: widgets.setting_value(SCHEMA[name], state.get(state.SWEEP_SETTING + name))
        for name in BASE_SETTINGS
        if state.get(state.SWEEP_SETTING + name) is not None
    }
    objective = state.get(state.SWEEP_OBJECTIVE)
    minutes = float(state.get(state.SWEEP_MINUTES) or 0)
    try:
        sweep_id = create_sweep(
            spec=spec,
            dataset=dataset,
            params=sweep_view.param_lines(state.get(state.SWEEP_PARAMS) or ""),
            trials=int(state.get(state.SWEEP_TRIALS)),
            timeout_s=minutes * 60 if minutes > 0 else None,
            settings=settings,
            objective=None if objective == "default" else objective,
            sampler=state.get(state.SWEEP_SAMPLER),
            pruner=state.get(state.SWEEP_PRUNER),
            spec_name=spec_name_of(source),
        )
    except (StudioError, ValueError) as error:
        st.error(md_escape(f"Not started: {error}"))
        return
    state.put(state.SWEEP_CHOICE, sweep_id)
    state.notify(state.SWEEP_NOTICE, "success", f"Sweep {sweep_id} started.")
    st.rerun()


def trials_panel(sweep_id: int) -> None:
    """The live part: status, trials table, best-so-far curve (a fragment while running)."""
    sweep = get_sweep(sweep_id)
    trials = trial_views(sweep)
    best = best_trial(sweep, trials)
    goal = "highest" if sweep.direction == "maximize" else "lowest"
    ended = sum(1 for t in trials if t.state not in ACTIVE)
    st.markdown(
        md_escape(
            f"**{sweep.name}** — {sweep.status}: {ended} of {sweep.max_trials or '?'} trials "
            f"ended; {goal} {sweep.objective}; {sweep.sampler} sampler, {sweep.pruner} pruner"
        )
    )
    if best is not None:
        st.success(
            md_escape(
                f"Best: trial {best.number} (run {best.run_id}), {best.value:.4g} with "
                + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in best.params.items())
            )
        )  # fmt: skip
    st.dataframe(
        pd.DataFrame(sweep_view.trial_rows(trials, sweep.objective)),
        hide_index=True,
        width="stretch",
        key=state.SWEEP_TABLE,
    )
    st.plotly_chart(
        sweep_view.best_so_far_figure(trials, best_so_far(sweep, trials), sweep.objective),
        width="stretch",
        key=state.SWEEP_BEST_CHART,
    )


def use_the_best(sweep_id: int) -> None:
    """Open the best trial's model in Build and put its settings on Train."""
    sweep = get_sweep(sweep_id)
    best = best_trial(sweep, trial_views(sweep))
    if best is None or best.run_id is None:
        state.notify(state.SWEEP_NOTICE, "warning", "No trial has completed yet.")
        return
    run = runs.get_run(best.run_id)
    draft = spec_editor.from_spec(run.spec)
    draft.name = run.spec_name or draft.name
    state.put(state.DRAFT, draft)
    state.put(state.INSERT_AFTER, None)
    state.put(state.INPUT_SOURCE, run.dataset)
    kept = sweep_view.train_form_values(run.dataset, run.settings)
    for key in kept:
        st.session_state.pop(key, None)  # the kept values, not stale widget ones, fill Train
    state.put(state.TRAIN_KEPT, kept)
    state.notify(
        state.NOTICE,
        "success",
        f"Opened the model of sweep {sweep_id}'s best trial (run {run.id}); its settings are "
        "on Train.",
    )


def watch() -> None:
    sweeps = list_sweeps()
    if not sweeps:
        return
    by_id = {s.id: s for s in sweeps}
    wanted = state.query_param(state.QP_SWEEP)
    if (
        wanted
        and wanted.isdigit()
        and int(wanted) in by_id
        and state.SWEEP_CHOICE not in (st.session_state)
    ):
        state.put(state.SWEEP_CHOICE, int(wanted))
    if state.get(state.SWEEP_CHOICE) not in by_id:
        state.put(state.SWEEP_CHOICE, sweeps[0].id)
    st.subheader("Trials", anchor=False)
    sweep_id = st.selectbox(
        "Sweep",
        list(by_id),
        format_func=lambda i: f"{i}: {by_id[i].name} ({by_id[i].status})",
        key=state.SWEEP_CHOICE,
    )
    state.set_query_param(state.QP_SWEEP, str(sweep_id))
    running = by_id[sweep_id].status == SweepStatus.RUNNING
    st.fragment(run_every=POLL_S if running else None)(trials_panel)(sweep_id)
    actions = st.columns(3)
    if actions[0].button("Use the best", key=state.SWEEP_USE_BEST, icon=":material/star:"):
        use_the_best(sweep_id)
        if state.get(state.SWEEP_NOTICE) is None:
            st.switch_page(state.PAGE_BUILD)
    if running and actions[1].button("Stop the sweep", key=state.SWEEP_STOP):
        stop_sweep(sweep_id)
        st.rerun()
    study = studies.load(by_id[sweep_id])
    figures = sweep_view.optuna_figures(study)
    if figures:
        st.subheader("Optuna's view", anchor=False)
        for tab, (title, figure) in zip(st.tabs(list(figures)), figures.items(), strict=True):
            tab.plotly_chart(figure, width="stretch", key=state.sweep_figure_key(title))


st.title("Sweep")
state.show_notice(state.SWEEP_NOTICE)
try:
    with st.expander("New sweep", expanded=not list_sweeps()):
        define()
    watch()
except StudioError as error:
    st.error(md_escape(error))
