"""A sweep's search space: which run settings and block arguments to vary, and over what.

Parameters are named as a person writes them: a run setting (`lr`, `batch_size`, `optimizer`,
`weight_decay`, ... from TrainConfig's schema), `dropout` (the `p` of every Dropout block), or
`block.ID_OR_INDEX.ARG` (an argument of one block: `block.2.out_channels`, `block.gru.hidden_size`;
the index counts from 0, as every spec error names layers). Each is checked before anything is
queued against the same schemas that check runs and specs (TrainConfig, the layer registry, a
trace of the model at each end of the range), so a bad range is refused naming the parameter
and what is allowed.

The `Param` type and the `--param` text are in core.sweeps.params.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import SettingsError, SpecError, StudioError
from core.layers.registry import LAYERS, LayerProblem
from core.sweeps.params import Param
from core.train.config import TrainConfig, applies

if TYPE_CHECKING:
    from core.data import DatasetInfo

BLOCK_PREFIX = "block."
DROPOUT = "dropout"  # the `p` of every Dropout block at once
DROPOUT_TYPES = ("Dropout", "Dropout2d")
NOT_SEARCHABLE = {  # run settings a sweep cannot vary, and why
    "device": "it says where to train, not how",
    "betas": "it is a pair; search lr or weight_decay instead",
    "seed": "a sweep compares settings at one seed; set it with --seed",
    "log_every": "it only changes how often the loss is recorded",
}
SETTINGS = {entry["name"]: entry for entry in TrainConfig.schema()}


# --- checking ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a space is checked against: the model, the base settings and the dataset."""

    spec: dict[str, Any]
    settings: dict[str, Any]  # TrainConfig.to_dict() of the base settings
    info: DatasetInfo


def check_space(raw: Iterable[Mapping[str, Any] | Param], context: Context) -> list[Param]:
    """The parameters, typed and checked (SettingsError naming the first bad one and what it
    allows). Nothing may be given twice; at least one parameter is needed."""
    entries = [e.to_dict() if isinstance(e, Param) else dict(e) for e in raw]
    by_name: dict[str, dict[str, Any]] = {}
    for values in entries:
        name = str(values.get("name", "")).strip()
        if name in by_name:
            raise SettingsError(f"parameter {name!r} is given twice; give each once")
        by_name[name] = values
    if not entries:
        raise SettingsError(
            "a sweep needs at least one parameter to search, e.g. --param lr=1e-4:1e-1:log"
        )
    return [check_param(v, context, companions=_companions(n, by_name)) for n, v in by_name.items()]


def check_param(
    values: Mapping[str, Any], context: Context, *, companions: Mapping[str, Any] | None = None
) -> Param:
    """One parameter checked against what it sets, each value applied with `companions` (the
    searched choice it needs, e.g. optimizer sgd for momentum); SettingsError names it."""
    name = str(values.get("name", "")).strip()
    if not name:
        raise SettingsError("a parameter needs a name, e.g. lr, batch_size or block.2.out_channels")
    kind, describe = _target_kind(name, context)
    choices = values.get("choices")
    low, high, log = values.get("low"), values.get("high"), bool(values.get("log", False))
    where = f"parameter {name}"
    if choices is not None:
        if not isinstance(choices, list | tuple) or not choices:
            raise SettingsError(f"{where}: give at least one choice, e.g. {name}=a,b")
        if len(set(map(json.dumps, choices))) != len(choices):
            raise SettingsError(f"{where}: a choice is given twice in {list(choices)}")
        param = Param(name=name, kind="choice", choices=tuple(choices))
    else:
        if kind not in ("int", "float"):
            raise SettingsError(
                f"{where} is {describe}: it takes a list of choices, not a range (e.g. {name}=a,b)"
            )
        for end, value in (("low", low), ("high", high)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SettingsError(f"{where}: the {end} end {value!r} is not a number")
            if kind == "int" and not float(value).is_integer():
                raise SettingsError(f"{where} takes whole numbers; got {value!r}")
        if not low < high:
            raise SettingsError(f"{where}: the range {low}:{high} is empty; write LOW:HIGH")
        if log and low <= 0:
            raise SettingsError(
                f"{where}: a log range needs LOW > 0 (got {low}); drop :log or raise LOW"
            )
        cast = int if kind == "int" else float
        param = Param(name=name, kind=kind, low=cast(low), high=cast(high), log=log)
    for value in param.values_to_check():
        try:
            apply_params(
                context.spec, context.settings, {**(companions or {}), name: value}, context.info
            )
        except StudioError as error:
            raise SettingsError(f"{where}={value!r} is refused: {_plain(error)}") from None
    return param


def _plain(error: StudioError) -> str:
    return error.message if isinstance(error, SpecError) else str(error)


def _target_kind(name: str, context: Context) -> tuple[str, str]:
    """(kind, description) of what `name` sets; SettingsError for a name that sets nothing."""
    if name.startswith(BLOCK_PREFIX):
        index, arg = _block_target(name, context.spec)
        layer = context.spec["layers"][index]
        spec = LAYERS[layer["type"]].param(arg)
        return ("int" if spec.kind == "int" else "float" if spec.kind == "float" else "choice"), (
            f"{layer['type']}'s {arg} ({spec.allowed()})"
        )
    if name == DROPOUT:
        _dropout_layers(context.spec, name)
        return "float", "the p of every Dropout block"
    if name in NOT_SEARCHABLE:
        raise SettingsError(f"{name} cannot be searched: {NOT_SEARCHABLE[name]}")
    entry = SETTINGS.get(name)
    if entry is None:
        searchable = [n for n in SETTINGS if n not in NOT_SEARCHABLE]
        raise SettingsError(
            f"unknown parameter {name!r}; search a run setting ({', '.join(searchable)}), "
            f"{DROPOUT} (every Dropout block's p) or block.ID_OR_INDEX.ARG "
            "(e.g. block.2.out_channels)"
        )
    kind = entry["kind"]
    return (kind if kind in ("int", "float") else "choice"), f"a {kind} setting"


def _block_target(name: str, spec: Mapping[str, Any]) -> tuple[int, str]:
    """`block.2.out_channels` / `block.conv1.out_channels` -> (layer index, argument)."""
    reference, _, arg = name.removeprefix(BLOCK_PREFIX).rpartition(".")
    layers = spec.get("layers") or []
    if not reference or not arg:
        raise SettingsError(
            f"parameter {name!r}: write block.ID_OR_INDEX.ARG, e.g. block.2.out_channels"
        )
    ids = {layer.get("id"): i for i, layer in enumerate(layers) if isinstance(layer, dict)}
    shown = _layer_names(layers)  # conv1, relu1, ...: the names the layer table shows
    if reference in ids:
        index = ids[reference]
    elif reference in shown:
        index = shown.index(reference)
    elif reference.isdigit() and int(reference) < len(layers):
        index = int(reference)
    else:
        known = ", ".join(shown) or "none"
        raise SettingsError(
            f"parameter {name!r}: the model has no block {reference!r}; use an index from 0 to "
            f"{len(layers) - 1} or a name ({known})"
        )
    layer = layers[index]
    layer_type = LAYERS.get(layer.get("type")) if isinstance(layer, dict) else None
    if layer_type is None:
        raise SettingsError(f"parameter {name!r}: block {index} has no known layer type")
    names = [p.name for p in layer_type.params]
    if arg not in names:
        raise SettingsError(
            f"parameter {name!r}: block {index} is a {layer_type.name}, which takes "
            f"{', '.join(names) or 'no arguments'}"
        )
    return index, arg


def _layer_names(layers: list[Any]) -> list[str]:
    """The layer table's names of the blocks (the id, or conv1, relu1, ...); [] when the spec
    is too malformed to name (its own check reports that)."""
    from core.spec import attribute_names

    if not all(isinstance(layer, dict) for layer in layers):
        return []
    types = [layer.get("type") for layer in layers]
    ids = [layer.get("id") if isinstance(layer.get("id"), str) else None for layer in layers]
    try:
        return attribute_names(types, ids)
    except (TypeError, ValueError, AttributeError):
        return []


def _dropout_layers(spec: Mapping[str, Any], name: str = DROPOUT) -> list[int]:
    found = [
        i
        for i, layer in enumerate(spec.get("layers") or [])
        if isinstance(layer, dict) and layer.get("type") in DROPOUT_TYPES
    ]
    if not found:
        raise SettingsError(
            f"parameter {name!r} sets the p of every Dropout block, and this model has none; "
            "add a Dropout block or search block.ID_OR_INDEX.ARG"
        )
    return found


def _companions(name: str, by_name: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """For a setting read by some optimizers (or schedules) only, e.g. momentum, whose owner
    the sweep also searches: one searched choice that reads it, to check its values with.
    SettingsError when no searched choice reads it."""
    entry = SETTINGS.get(name)
    owner = entry.get("depends_on") if entry else None
    if owner is None or owner not in by_name:
        return {}
    choices = by_name[owner].get("choices") or ()
    users = [c for c in choices if applies(name, {owner: c})]
    if not users:
        readers = ", ".join(entry["defaults"])
        raise SettingsError(
            f"parameter {name} is read by {owner} {readers} only, and the sweep's "
            f"{owner} choices are {', '.join(map(str, choices))}: add one of those"
        )
    return {owner: users[0]}


# --- applying ----------------------------------------------------------------------------------


def apply_params(
    spec: Mapping[str, Any],
    settings: Mapping[str, Any],
    values: Mapping[str, Any],
    info: DatasetInfo,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trial's model and settings: `values` (parameter name -> value) set on copies of the
    base ones, checked as a run is at submission (SettingsError, SpecError). Settings that the
    chosen optimizer or schedule does not read are dropped (momentum for adam)."""
    from core.runs.submit import check_launch

    trial_spec = copy.deepcopy(dict(spec))
    trial_settings = dict(settings)
    for name, value in values.items():
        if name.startswith(BLOCK_PREFIX):
            index, arg = _block_target(name, trial_spec)
            trial_spec["layers"][index][arg] = _block_value(trial_spec, index, arg, value)
        elif name == DROPOUT:
            for index in _dropout_layers(trial_spec, name):
                trial_spec["layers"][index]["p"] = value
        else:
            trial_settings[name] = value
    chosen = {k: v for k, v in trial_settings.items() if k in values or v is not None}
    for name in list(chosen):
        if name in SETTINGS and name not in values and not applies(name, chosen):
            chosen.pop(name)  # a base value the searched optimizer does not read
    config = TrainConfig.checked(
        TrainConfig.from_dict(_drop_length_conflict(chosen, values)),
        train_size=info.sizes.get("train"),
        task=info.task,
        has_validation=info.sizes.get("val", 1) > 0,
        check_device=False,
    )
    try:
        check_launch(trial_spec, info.facts)
    except LayerProblem as problem:  # pragma: no cover - the builder wraps these
        raise SpecError(str(problem)) from None
    return trial_spec, config.to_dict()


def _drop_length_conflict(settings: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Searching epochs (or steps) replaces the base run's other length setting."""
    out = dict(settings)
    if "epochs" in values:
        out["steps"] = None
    elif "steps" in values:
        out["epochs"] = None
    return out


def _block_value(spec: Mapping[str, Any], index: int, arg: str, value: Any) -> Any:
    """Optuna gives floats for float arguments and ints for ints; keep them as the schema
    types them (a whole-number float for an int argument becomes an int)."""
    kind = LAYERS[spec["layers"][index]["type"]].param(arg).kind
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value
