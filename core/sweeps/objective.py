"""What a sweep optimizes: a validation metric the trial's task records, and its direction."""

from __future__ import annotations

from core import metric_catalog as catalog
from core.errors import SettingsError

DEFAULT_OBJECTIVE = {"classification": catalog.VAL_ACCURACY, "regression": catalog.VAL_LOSS}
RECORDED = {  # the validation metrics each task records (what an objective may be)
    "classification": (catalog.VAL_ACCURACY, catalog.VAL_LOSS),
    "regression": (catalog.VAL_LOSS, catalog.VAL_MAE, catalog.VAL_R2),
}
OBJECTIVES = tuple(dict.fromkeys(m for names in RECORDED.values() for m in names))


def choose_objective(objective: str | None, task: str) -> tuple[str, str]:
    """(metric, "maximize" | "minimize"): the default for the task (best validation accuracy;
    validation loss for regression), or the one asked for if this task records it."""
    allowed = RECORDED.get(task, (catalog.VAL_LOSS,))
    name = objective or DEFAULT_OBJECTIVE.get(task, catalog.VAL_LOSS)
    if name not in allowed:
        raise SettingsError(
            f"objective {name!r} is not recorded for a {task} dataset; "
            f"use one of {', '.join(allowed)}"
        )
    return name, "maximize" if catalog.metric(name).higher_is_better else "minimize"
