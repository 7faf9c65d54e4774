"""One searched parameter and its `--param` text; light (no torch), for readers and the CLI.

`--param` text: `NAME=LOW:HIGH` (a range; `:log` samples it on a log scale) or `NAME=a,b,c`
(choices). What a name may be, and the checks, are in core.sweeps.space.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import SettingsError


@dataclass(frozen=True)
class Param:
    """One searched parameter: a range (`low`..`high`, on a log scale with `log`) or `choices`.
    `kind` is "int", "float" or "choice", as the schema of what it sets says."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    @property
    def is_range(self) -> bool:
        return self.choices is None

    def values_to_check(self) -> list[Any]:
        """The values checked before a sweep starts: both ends of a range, or every choice."""
        return [self.low, self.high] if self.is_range else list(self.choices or ())

    def describe(self) -> str:
        """'lr from 0.0001 to 0.1 (log)', 'batch_size in 32, 64'."""
        if self.is_range:
            return f"{self.name} from {self.low:g} to {self.high:g}" + (
                " (log)" if self.log else ""
            )
        return f"{self.name} in " + ", ".join(map(str, self.choices or ()))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["choices"] = None if self.choices is None else list(self.choices)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Param:
        choices = values.get("choices")
        return cls(
            name=str(values["name"]),
            kind=str(values["kind"]),
            low=values.get("low"),
            high=values.get("high"),
            log=bool(values.get("log", False)),
            choices=None if choices is None else tuple(choices),
        )

    def distribution(self) -> Any:
        """The Optuna distribution this parameter is sampled from."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if not self.is_range:
            return CategoricalDistribution(list(self.choices or ()))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)


def parse_param(text: str) -> dict[str, Any]:
    """`lr=1e-4:1e-1:log` -> {"name": "lr", "low": 1e-4, "high": 0.1, "log": True};
    `batch_size=32,64` -> {"name": "batch_size", "choices": [32, 64]} (SettingsError if neither)."""
    name, equals, rest = text.partition("=")
    name, rest = name.strip(), rest.strip()
    if not equals or not name or not rest:
        raise SettingsError(
            f"--param {text!r} is not NAME=LOW:HIGH[:log] or NAME=a,b,c "
            "(e.g. lr=1e-4:1e-1:log, batch_size=32,64,128, block.2.out_channels=8:32)"
        )
    if "," not in rest and ":" in rest:
        parts = [p.strip() for p in rest.split(":")]
        log = len(parts) == 3 and parts[2].lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise SettingsError(
                f"--param {text!r}: a range is LOW:HIGH or LOW:HIGH:log, e.g. lr=1e-4:1e-1:log"
            )
        low, high = (_scalar(p) for p in parts[:2])
        return {"name": name, "low": low, "high": high, "log": log}
    return {"name": name, "choices": [_scalar(p.strip()) for p in rest.split(",")]}


def _scalar(text: str) -> Any:
    """'1e-3' -> 0.001, '64' -> 64, 'true' -> True, 'adam' -> 'adam'."""
    try:
        return json.loads(text)
    except ValueError:
        return text
