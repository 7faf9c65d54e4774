"""What the Sweep page shows, computed without Streamlit (and tested): the trials table, the
best-so-far figure, Optuna's own figures, the searchable names of a model, the form's
parameter lines, and the Train form values of the best trial ("Use the best")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from app import state
from app.run_view import status_word
from core import metric_catalog as catalog
from core.sweeps.params import parse_param
from core.sweeps.space import BLOCK_PREFIX, DROPOUT, DROPOUT_TYPES, NOT_SEARCHABLE, SETTINGS
from core.sweeps.status import TrialView

EXAMPLE_PARAMS = "lr=1e-4:1e-1:log\nbatch_size=32,64,128"


def param_lines(text: str) -> list[dict[str, Any]]:
    """The form's parameter box, one `NAME=LOW:HIGH[:log]` or `NAME=a,b,c` a line (blank lines
    and `#` comments skipped); SettingsError naming the line that cannot be read."""
    return [
        parse_param(line.strip())
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def searchable(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(name, what it allows) of everything a sweep of `spec` may search: the run settings,
    `dropout` when the model has Dropout blocks, and every block argument with a number or a
    choice."""
    from core.layers.registry import LAYERS

    names = [
        (name, f"{entry['kind']} run setting: {entry['help']}")
        for name, entry in SETTINGS.items()
        if name not in NOT_SEARCHABLE and entry["kind"] in ("int", "float", "choice", "bool")
    ]
    layers = [layer for layer in spec.get("layers") or [] if isinstance(layer, dict)]
    if any(layer.get("type") in DROPOUT_TYPES for layer in layers):
        names.append((DROPOUT, "the p of every Dropout block (0 to 1)"))
    for index, layer in enumerate(layers):
        layer_type = LAYERS.get(layer.get("type"))
        if layer_type is None:
            continue
        for param in layer_type.params:
            if param.kind in ("int", "float", "choice", "bool"):
                names.append(
                    (f"{BLOCK_PREFIX}{index}.{param.name}", f"{layer_type.name}: {param.allowed()}")
                )
    return names


def trial_rows(trials: Sequence[TrialView], objective: str) -> list[dict[str, Any]]:
    """One row per trial for the live table: number, run, state, value, steps, parameters."""
    info = catalog.metric(objective)
    rows = []
    for trial in trials:
        row: dict[str, Any] = {
            "trial": trial.number,
            "run": trial.run_id,
            "state": status_word(trial.state),
            info.title: trial.value,
            "steps": trial.steps,
        }
        row.update({name: value for name, value in trial.params.items()})
        rows.append(row)
    return rows


def best_so_far_figure(
    trials: Sequence[TrialView], points: Sequence[tuple[int, float]], objective: str
) -> go.Figure:
    """Each ended trial's value (pruned ones hollow) and the best completed value so far."""
    info = catalog.metric(objective)
    figure = go.Figure()
    for name, symbol, wanted in (
        ("completed", "circle", "completed"),
        ("pruned", "circle-open", "pruned"),
    ):
        shown = [t for t in trials if t.state == wanted and t.value is not None]
        figure.add_trace(
            go.Scatter(
                x=[t.number for t in shown],
                y=[t.value for t in shown],
                mode="markers",
                name=name,
                marker={"symbol": symbol, "size": 9},
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            mode="lines",
            line={"shape": "hv"},
            name="best so far",
        )
    )
    figure.update_layout(
        xaxis_title="trial",
        yaxis_title=info.title,
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
    )
    return figure


def optuna_figures(study: Any) -> dict[str, go.Figure]:
    """Optuna's own Plotly figures of the study (title -> figure), those it can draw now:
    parallel coordinates, parameter importances (two completed trials at least), slices."""
    import optuna.visualization as vis
    from optuna.trial import TrialState

    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        return {}
    drawers = {
        "Parallel coordinates": vis.plot_parallel_coordinate,
        "Parameter importances": vis.plot_param_importances,
        "Slices": vis.plot_slice,
    }
    figures = {}
    for title, draw in drawers.items():
        if title == "Parameter importances" and len(completed) < 2:
            continue
        try:
            figures[title] = draw(study)
        except (ValueError, RuntimeError):  # too few distinct values to draw this one yet
            continue
    return figures


def train_form_values(
    dataset: str, settings: Mapping[str, Any], *, spec_source: str = state.FROM_BUILD
) -> dict[str, Any]:
    """The Train form's kept values (app/train_form's TRAIN_KEPT) for a trial's settings: the
    model open in Build, the dataset, and every setting the trial set."""
    kept: dict[str, Any] = {
        state.TRAIN_SPEC_SOURCE: spec_source,
        state.TRAIN_DATASET: dataset,
        state.TRAIN_LENGTH: "steps" if settings.get("steps") else "epochs",
    }
    for name, value in settings.items():
        entry = SETTINGS.get(name)
        if entry is None or value is None:
            continue
        if entry["kind"] == "float_pair":
            value = ", ".join(f"{v:g}" for v in value)
        kept[state.TRAIN_SETTING + name] = value
    return kept
