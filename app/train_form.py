"""The Train page's form kept across page switches and reloads, and read back as settings.

Streamlit deletes a widget's state when a run of another page leaves it unrendered, so the
form's values are copied into a plain key after every run of the page (and the changed ones
into the URL, for a reload), and put back before the widgets are drawn again. Values from the
URL, which anyone can edit, are checked against TrainConfig's schema before they are used.
"""

from __future__ import annotations

import json

import streamlit as st

from app import state, widgets
from core.train.config import TrainConfig, applies

SCHEMA = {field["name"]: field for field in TrainConfig.schema()}


def form_keys() -> list[str]:
    """The widget keys of the form whose values are kept."""
    return [
        state.TRAIN_SPEC_SOURCE,
        state.TRAIN_DATASET,
        state.TRAIN_LENGTH,
        *(state.TRAIN_SETTING + name for name in SCHEMA),
    ]


def readable(key: str, value) -> bool:
    """Whether a kept value (from the URL, which anyone can edit) fits its widget."""
    if key == state.TRAIN_LENGTH:
        return value in ("epochs", "steps")
    if key in (state.TRAIN_SPEC_SOURCE, state.TRAIN_DATASET):
        return isinstance(value, str)  # checked against the options where they are drawn
    entry = SCHEMA.get(key.removeprefix(state.TRAIN_SETTING))
    if entry is None:
        return False
    kind = entry["kind"]
    if kind == "choice":
        return value in entry["choices"] or entry["name"] == "device"
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "float_pair":
        return isinstance(value, str)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if kind == "int" and not isinstance(value, int):
        return False
    low, high = entry.get("minimum"), entry.get("maximum")
    return (low is None or value >= low) and (high is None or value <= high)


def restore_form() -> None:
    """Put the kept values back into the widgets' keys the page switch deleted: the session's
    copy, else (a reload, a shared link) the URL's."""
    kept = state.get(state.TRAIN_KEPT)
    if kept is not None:
        # the widgets' newest values first: a change whose run was cut short by a page switch
        # (before keep_form) is in the session only until that page's run drops it
        kept = {**kept, **{k: st.session_state[k] for k in form_keys() if k in st.session_state}}
        state.put(state.TRAIN_KEPT, kept)
    else:
        try:
            kept = json.loads(state.query_param(state.QP_TRAIN) or "{}")
        except ValueError:
            kept = {}
        if not isinstance(kept, dict):
            kept = {}
        kept = {
            state.TRAIN_SETTING + k if k in SCHEMA else f"train.{k}": v for k, v in kept.items()
        }
    for key, value in kept.items():
        if key not in st.session_state and key in form_keys() and readable(key, value):
            st.session_state[key] = value


def keep_form() -> None:
    """Copy the form's values out of the widgets (and the changed ones into the URL)."""
    kept = {key: st.session_state[key] for key in form_keys() if key in st.session_state}
    state.put(state.TRAIN_KEPT, kept)
    changed = {}
    for key, value in kept.items():
        name = key.removeprefix(state.TRAIN_SETTING)
        if name in SCHEMA:
            if value != SCHEMA[name]["default"]:
                changed[name] = value
        elif key == state.TRAIN_LENGTH and value != "epochs":
            changed["length"] = value
    state.set_query_param(
        state.QP_TRAIN, json.dumps(changed, separators=(",", ":")) if changed else None
    )


def on_screen() -> dict:
    """The choices other settings depend on (optimizer, scheduler), as picked on screen."""
    return {
        name: state.get(state.TRAIN_SETTING + name)
        for name in {entry["depends_on"] for entry in SCHEMA.values() if "depends_on" in entry}
    }


def chosen_settings() -> dict:
    """The settings on screen (fields not shown keep TrainConfig's defaults; those the chosen
    optimizer or schedule does not read are left out); ValueError when a box holds text that
    cannot be read."""
    values = {}
    for name, field in SCHEMA.items():
        key = state.TRAIN_SETTING + name
        if key in st.session_state:
            values[name] = widgets.setting_value(field, st.session_state[key])
    if state.get(state.TRAIN_LENGTH, "epochs") == "epochs":
        values.pop("steps", None)
    else:
        values.pop("epochs", None)
    return {name: value for name, value in values.items() if applies(name, values)}
