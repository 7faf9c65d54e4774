"""`studio train | submit` flags generated from the run-settings schema (`TrainConfig.schema()`).

A setting added to TrainConfig appears here with its type, choices, help and default without
touching the CLI. The flag is the setting's name with dashes (`batch_size` -> `--batch-size`)
unless the schema names another (`flag`); settings sharing an `exclusive` group (epochs, steps)
are mutually exclusive. Only flags given on the command line reach the settings, so everything
else keeps TrainConfig's defaults, and the values are checked once, by TrainConfig.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from typing import Any

from core.train.config import DEVICE_FORMS, TrainConfig, describe_use

Entry = Mapping[str, Any]  # one `TrainConfig.schema()` entry

METAVARS = {"int": "N", "float": "X", "device": "|".join(DEVICE_FORMS)}


def flag_name(entry: Entry) -> str:
    """`--batch-size` for batch_size; the schema's own `flag` where it has one."""
    return "--" + entry.get("flag", entry["name"]).replace("_", "-")


def add_setting_flags(
    parser: argparse.ArgumentParser, schema: Iterable[Entry] | None = None
) -> argparse._ArgumentGroup:
    """One flag per setting in `schema` (TrainConfig's by default), in a group of their own."""
    group = parser.add_argument_group(
        "run settings", "checked together when the run is submitted; unset ones keep the default"
    )
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for entry in TrainConfig.schema() if schema is None else schema:
        target = group
        if entry.get("exclusive"):
            if entry["exclusive"] not in exclusive:
                exclusive[entry["exclusive"]] = group.add_mutually_exclusive_group()
            target = exclusive[entry["exclusive"]]
        target.add_argument(flag_name(entry), dest=entry["name"], default=None, **_options(entry))
    return group


def settings_from_args(args: argparse.Namespace, schema: Iterable[Entry] | None = None) -> dict:
    """The settings given on the command line, as `TrainConfig.from_dict` takes them."""
    entries = TrainConfig.schema() if schema is None else schema
    return {
        e["name"]: getattr(args, e["name"]) for e in entries if getattr(args, e["name"]) is not None
    }


def _options(entry: Entry) -> dict[str, Any]:
    """argparse keywords for one setting: type, choices, metavar and help."""
    kind = entry["kind"]
    help_text = _help(entry)
    if kind == "bool":
        return {"action": argparse.BooleanOptionalAction, "help": help_text}
    if kind == "choice":
        return {"choices": entry["choices"], "help": help_text}
    if kind == "float_pair":
        return {"type": float, "nargs": 2, "metavar": ("X1", "X2"), "help": help_text}
    return {
        "type": {"int": int, "float": float, "device": str}[kind],
        "metavar": METAVARS[kind],
        "help": help_text,
    }


def _help(entry: Entry) -> str:
    """The schema's help, who reads the setting, and its default."""
    text = entry["help"]
    use = describe_use(entry)
    if use:
        text += f" {use}" if use.startswith("(") else f"; {use}"
    elif entry["default"] is not None:
        text += f" (default {_plain(entry['default'])})"
    return text.replace("%", "%%")  # argparse formats help with %


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return f"{value:g}" if isinstance(value, float) else str(value)
