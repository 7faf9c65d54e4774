"""Defining a sweep: everything checked once, then the sweep row, its study, its first trials.

Nothing is queued when anything is wrong (SettingsError / SpecError / DataError naming it):
the base settings and model are checked as a run's are, then every parameter at both ends of
its range or at each of its choices (core.sweeps.space).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from core.errors import SettingsError
from core.store import db
from core.store import sweeps as store
from core.sweeps import study as studies
from core.sweeps.objective import choose_objective
from core.sweeps.params import Param
from core.sweeps.space import Context, check_space


def create_sweep(
    *,
    spec: dict[str, Any],
    dataset: str,
    params: Iterable[Mapping[str, Any] | Param],
    trials: int | None = None,
    timeout_s: float | None = None,
    settings: Mapping[str, Any] | None = None,
    objective: str | None = None,
    sampler: str = "tpe",
    pruner: str = "median",
    name: str | None = None,
    spec_name: str | None = None,
    first_trials: Iterable[Mapping[str, Any]] = (),
) -> int:
    """Check and record a sweep, then queue its first trials (as many as live workers); the
    workers queue the rest as they free up (core.sweeps.queue). Returns the sweep id."""
    from core.data import describe_dataset
    from core.runs.submit import _check_device_somewhere, check_launch
    from core.sweeps.queue import advance
    from core.train import TrainConfig

    if sampler not in studies.SAMPLERS:
        raise SettingsError(f"sampler {sampler!r} is unknown; use {', '.join(studies.SAMPLERS)}")
    if pruner not in studies.PRUNERS:
        raise SettingsError(f"pruner {pruner!r} is unknown; use {', '.join(studies.PRUNERS)}")
    if trials is not None and (isinstance(trials, bool) or trials < 1):
        raise SettingsError(f"trials={trials!r}: give a number of trials of at least 1")
    if timeout_s is not None and timeout_s <= 0:
        raise SettingsError(f"time limit {timeout_s!r} s: give a positive number of seconds")
    info = describe_dataset(dataset)
    base = TrainConfig.checked(
        dict(settings) if settings is not None else None,
        train_size=info.sizes.get("train"),
        task=info.task,
        has_validation=info.sizes.get("val", 1) > 0,
        check_device=False,
    )
    _check_device_somewhere(base.device)
    if info.sizes.get("val", 1) == 0:
        raise SettingsError(
            f"dataset {dataset!r} has no validation split, which a sweep's objective is measured on"
        )
    check_launch(spec, info.facts)
    metric, direction = choose_objective(objective, info.task)
    space = check_space(params, Context(spec=spec, settings=base.to_dict(), info=info))
    if sampler == "grid":
        ranges = [p.name for p in space if p.is_range]
        if ranges:
            raise SettingsError(
                f"the grid sampler needs lists of values; {', '.join(ranges)} is a range: "
                "write it as choices, e.g. lr=0.001,0.01,0.1"
            )
        size = studies.grid_size(space)
        trials = min(trials or size, size)
    if trials is None and timeout_s is None:
        raise SettingsError("a sweep needs a budget: a number of trials, a time limit, or both")
    first = [_check_first_trial(values, space) for values in first_trials]
    row = db.call(
        store.create_sweep,
        name=name or f"{spec_name or spec.get('name') or 'model'} on {dataset}",
        spec_name=spec_name or spec.get("name"),
        spec=spec,
        dataset=dataset,
        settings=base.to_dict(),
        space=[p.to_dict() for p in space],
        objective=metric,
        direction=direction,
        sampler=sampler,
        pruner=pruner,
        max_trials=trials,
        timeout_s=timeout_s,
        seed=base.seed,
    )
    study = studies.load(row, create=True)
    if sampler == "grid":
        first += [p for p in studies.grid_points(space, seed=base.seed) if p not in first]
    for values in first[: trials or None]:
        study.enqueue_trial(values, skip_if_exists=True)
    advance(row.id, owner=f"create-{row.id}")
    return row.id


def _check_first_trial(values: Mapping[str, Any], space: list[Param]) -> dict[str, Any]:
    """A trial to run first: a value for every parameter, inside its range or choices."""
    by_name = {p.name: p for p in space}
    missing = sorted(set(by_name) - set(values))
    unknown = sorted(set(values) - set(by_name))
    if missing or unknown:
        raise SettingsError(
            f"a first trial must give each searched parameter once: missing {missing or 'none'}, "
            f"not searched {unknown or 'none'}"
        )
    for name, value in values.items():
        param = by_name[name]
        inside = (
            value in (param.choices or ())
            if not param.is_range
            else isinstance(value, int | float) and param.low <= value <= param.high
        )
        if not inside:
            raise SettingsError(f"first trial: {name}={value!r} is outside {param.describe()}")
    return dict(values)
