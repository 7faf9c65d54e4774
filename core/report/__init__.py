"""Explanations that travel: one self-contained HTML report of a trained run, and the per-class
view ("what does it look for when it says X?") the Explain page shows too.

    path = write_run_report(run_id, Path("report.html"), samples=6)
    profiles = class_profiles(model, dataset)   # one averaged attribution per class

Names load on first use, so `studio` commands that never report do not import Captum.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ReportData": "core.report.build",
    "build_report": "core.report.build",
    "run_report_html": "core.report.build",
    "write_run_report": "core.report.build",
    "render_report": "core.report.page",
    "class_profiles": "core.report.profiles",
    "ClassProfile": "core.report.profiles",
    "Profiles": "core.report.profiles",
    "class_figure": "core.report.figures",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'core.report' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
