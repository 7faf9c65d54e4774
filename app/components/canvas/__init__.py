"""The Build page's canvas: a Streamlit Components v2 element around React Flow.

The frontend (frontend/src, built with Vite by `make frontend`) is committed as one ES module and
one stylesheet under build/. Components v2 takes them inline: the module is loaded from the
text Python sends, so nothing needs an installed package manifest or a static file server, and
an editable install, a wheel and a plain checkout all work the same way.

Data flows one way: Python sends the graph (`app.canvas_graph.graph_data`), the canvas sends
back one action per gesture as the trigger value "action" (`app.canvas_graph.apply_action`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import streamlit as st

BUILD_DIR = Path(__file__).resolve().parent / "build"
COMPONENT_NAME = "studio_canvas"
ACTION = "action"  # the trigger the frontend sets (setTriggerValue("action", {...}))


@cache
def _renderer() -> Callable[..., Any]:
    """Register the component once per process with the committed bundle."""
    js = (BUILD_DIR / "canvas.js").read_text(encoding="utf-8")
    css = (BUILD_DIR / "canvas.css").read_text(encoding="utf-8")
    # React Flow's own stylesheet must reach the nodes it styles; its classes are all prefixed
    # (react-flow__*, studio-*), so the page's styles and these do not meet
    return st.components.v2.component(COMPONENT_NAME, js=js, css=css, isolate_styles=False)


def canvas(graph: dict[str, Any], *, key: str, on_action: Callable[[], None]) -> Any:
    """Draw the graph; `on_action` runs (before the page) when the canvas sends an action,
    which `action_of(key)` then reads."""
    mount = _renderer()
    return mount(key=key, data=graph, on_action_change=on_action, height=540)


def action_of(key: str) -> dict[str, Any] | None:
    """The action the canvas under `key` sent in this run, if any."""
    value = st.session_state.get(key)
    action = value.get(ACTION) if hasattr(value, "get") else None
    return action if isinstance(action, dict) else None
