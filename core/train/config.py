"""Run settings: one typed, frozen schema shared by the UI, the CLI and the worker.

Each field carries its own rules in `metadata` (choices, range, help) so the pages can render
widgets from the same schema that `from_dict` validates against.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import SettingsError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "onecycle")
LOSSES = ("auto", "cross_entropy", "mse")
PRECISIONS = ("auto", "bf16", "fp32")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda|cuda:\d+)$")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N (N = 0, 1, ...), mps"


def _setting(default: Any, kind: str, help: str, **rules: Any) -> Any:
    """A dataclass field whose metadata describes how to validate and render it."""
    return field(default=default, metadata={"kind": kind, "help": help, **rules})


@dataclass(frozen=True)
class TrainConfig:
    """How to train a model. Invalid values are refused at construction with a SettingsError."""

    # length of training: exactly one of epochs / steps
    epochs: int | None = _setting(
        10, "int", "passes over the training set (or set steps instead)", minimum=1, optional=True
    )  # 10 passes suit the small built-in datasets
    steps: int | None = _setting(
        None, "int", "optimizer steps to run instead of whole epochs", minimum=1, optional=True
    )
    batch_size: int = _setting(
        64, "int", "samples per optimizer step", minimum=1
    )  # fast on CPU and GPU, and still generalizes well
    # optimizer and its own parameters
    optimizer: str = _setting("adam", "choice", "update rule", choices=OPTIMIZERS)
    # Adam needs little tuning, so it is the safest default for a person new to training
    lr: float = _setting(1e-3, "float", "learning rate", minimum=0.0, exclusive_minimum=True)
    momentum: float = _setting(
        0.9, "float", "SGD momentum (sgd only)", minimum=0.0, maximum=1.0, exclusive_maximum=True
    )  # plain SGD without momentum is needlessly slow
    nesterov: bool = _setting(False, "bool", "Nesterov momentum (sgd only; needs momentum > 0)")
    betas: tuple[float, float] = _setting(
        (0.9, 0.999),
        "float_pair",
        "Adam/AdamW moment decay rates",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    )  # PyTorch's defaults, right for almost every model
    eps: float = _setting(
        1e-8,
        "float",
        "term added to denominators (adam, adamw, rmsprop, adagrad)",
        minimum=0.0,
        exclusive_minimum=True,
    )
    alpha: float = _setting(
        0.99,
        "float",
        "RMSprop smoothing constant",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    )
    weight_decay: float | None = _setting(
        None, "float", "L2 penalty; empty = the optimizer's default", minimum=0.0, optional=True
    )  # None keeps each optimizer's own default: 0.01 for AdamW, 0 for the rest
    # learning-rate schedule; stepped after every optimizer step
    scheduler: str = _setting("none", "choice", "learning-rate schedule", choices=SCHEDULERS)
    step_size: int = _setting(
        5, "int", "step schedule: epochs between learning-rate drops", minimum=1
    )
    gamma: float = _setting(
        0.1,
        "float",
        "step schedule: factor applied at each drop",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    )  # a 10x drop is the classic step schedule
    max_lr: float | None = _setting(
        None,
        "float",
        "one-cycle peak learning rate; empty = lr",
        minimum=0.0,
        exclusive_minimum=True,
        optional=True,
    )
    # loss
    loss: str = _setting(
        "auto",
        "choice",
        "auto = cross-entropy for classification, MSE for regression",
        choices=LOSSES,
    )
    label_smoothing: float = _setting(
        0.0,
        "float",
        "cross-entropy label smoothing",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
    )
    # where and how to compute
    device: str = _setting("auto", "device", "auto picks cuda, then mps, then cpu")
    precision: str = _setting(
        "auto", "choice", "auto = bf16 autocast on CUDA, fp32 elsewhere", choices=PRECISIONS
    )
    grad_clip: float | None = _setting(
        None,
        "float",
        "clip the gradient norm to this value; empty = no clipping",
        minimum=0.0,
        exclusive_minimum=True,
        optional=True,
    )
    early_stopping_patience: int | None = _setting(
        None,
        "int",
        "stop after this many epochs without a lower validation loss; empty = never",
        minimum=1,
        optional=True,
    )
    seed: int = _setting(0, "int", "same seed, same result (on CPU)", minimum=0, maximum=2**63 - 1)
    log_every: int = _setting(
        25, "int", "steps between recorded training-loss points", minimum=1
    )  # one host sync per 25 steps costs nothing measurable and still draws a smooth curve

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_value(f, getattr(self, f.name))
        if self.epochs is None and self.steps is None:
            raise SettingsError("set either epochs or steps (both are empty)")
        if self.epochs is not None and self.steps is not None:
            raise SettingsError(
                f"set either epochs or steps, not both (epochs={self.epochs}, steps={self.steps}); "
                "for a run of steps set epochs to None (from_dict does this when only steps is given)"
            )
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise SettingsError(
                "nesterov=True needs optimizer 'sgd' with momentum > 0 "
                f"(optimizer={self.optimizer!r}, momentum={self.momentum})"
            )
        if self.loss == "mse" and self.label_smoothing > 0:
            raise SettingsError(
                f"label_smoothing={self.label_smoothing} applies to cross-entropy only; "
                "set it to 0 or use loss 'auto' or 'cross_entropy'"
            )

    # ---- conversion -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (betas as a list); `from_dict(to_dict())` round-trips."""
        out = dataclasses.asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from JSON / CLI / form values; refuses unknown keys and wrong types.

        Giving `steps` without `epochs` means "steps instead of epochs" (epochs becomes None).
        """
        if not isinstance(values, dict):
            raise SettingsError(f"run settings must be a mapping, got {type(values).__name__}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise SettingsError(
                f"unknown run setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; allowed: {', '.join(known)}"
            )
        kwargs = {name: _coerce(known[name], value) for name, value in values.items()}
        if kwargs.get("steps") is not None and "epochs" not in kwargs:
            kwargs["epochs"] = None
        return cls(**kwargs)

    @classmethod
    def schema(cls) -> list[dict[str, Any]]:
        """Every setting with its default, kind, rules and help text (for widgets and docs)."""
        return [
            {"name": f.name, "default": f.default, **f.metadata} for f in dataclasses.fields(cls)
        ]

    # ---- checks that need the dataset or the machine ---------------------------------------

    def validate(
        self, *, train_size: int | None = None, task: str | None = None, check_device: bool = True
    ) -> None:
        """Refuse settings that cannot work for this training set or on this machine."""
        if train_size is not None:
            if train_size < 1:
                raise SettingsError("the training set is empty; there is nothing to train on")
            if self.batch_size > train_size:
                raise SettingsError(
                    f"batch_size={self.batch_size} is larger than the training set "
                    f"({train_size} samples); choose at most {train_size}"
                )
        if task is not None:
            if task == "regression" and self.loss == "cross_entropy":
                raise SettingsError(
                    "loss 'cross_entropy' needs a classification dataset; this one is "
                    "regression: use loss 'auto' or 'mse'"
                )
            if task == "classification" and self.loss == "mse":
                raise SettingsError(
                    "loss 'mse' needs a regression dataset; this one is classification: "
                    "use loss 'auto' or 'cross_entropy'"
                )
        if check_device:
            from core.train.devices import resolve_device

            device = resolve_device(self.device)
            if self.precision == "bf16" and device.type != "cuda":
                raise SettingsError(
                    f"precision 'bf16' needs a CUDA device; device {self.device!r} is "
                    f"{device}: use precision 'auto' or 'fp32'"
                )


# ---- field checking -------------------------------------------------------------------------


def _describe_allowed(f: dataclasses.Field) -> str:
    meta = f.metadata
    kind = meta["kind"]
    if kind == "choice":
        text = "one of " + ", ".join(repr(c) for c in meta["choices"])
    elif kind == "device":
        text = DEVICE_CHOICES
    elif kind == "bool":
        text = "true or false"
    else:
        noun = {"int": "a whole number", "float": "a number", "float_pair": "two numbers"}[kind]
        bounds = []
        if "minimum" in meta:
            bounds.append(
                (">" if meta.get("exclusive_minimum") else ">=") + f" {_number(meta['minimum'])}"
            )
        if "maximum" in meta:
            bounds.append(
                ("<" if meta.get("exclusive_maximum") else "<=") + f" {_number(meta['maximum'])}"
            )
        text = noun + (" " + " and ".join(bounds) if bounds else "")
    if meta.get("optional"):
        text += ", or empty (null)"
    return text


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _refuse(f: dataclasses.Field, value: Any) -> SettingsError:
    return SettingsError(f"{f.name}={value!r} is not allowed; expected {_describe_allowed(f)}")


def _coerce(f: dataclasses.Field, value: Any) -> Any:
    """JSON-ish value -> the field's Python type, refusing the wrong type."""
    kind = f.metadata["kind"]
    if value is None:
        return None
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "float_pair" and isinstance(value, list | tuple):
        if len(value) != 2 or not all(_is_number(v) for v in value):
            raise _refuse(f, value)
        return (float(value[0]), float(value[1]))
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_value(f: dataclasses.Field, value: Any) -> None:
    meta = f.metadata
    kind = meta["kind"]
    if value is None:
        if meta.get("optional"):
            return
        raise _refuse(f, value)
    type_ok = {
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": _is_number(value),
        "float_pair": isinstance(value, tuple) and len(value) == 2 and all(map(_is_number, value)),
        "bool": isinstance(value, bool),
        "choice": isinstance(value, str) and value in meta.get("choices", ()),
        "device": isinstance(value, str) and bool(DEVICE_PATTERN.match(value)),
    }[kind]
    if not type_ok:
        raise _refuse(f, value)
    if kind in ("int", "float"):
        _check_range(f, value)
    elif kind == "float_pair":
        for item in value:
            _check_range(f, item, shown=value)


def _check_range(f: dataclasses.Field, value: float, shown: Any = None) -> None:
    meta = f.metadata
    low, high = meta.get("minimum"), meta.get("maximum")
    bad = (
        (low is not None and (value <= low if meta.get("exclusive_minimum") else value < low))
        or (high is not None and (value >= high if meta.get("exclusive_maximum") else value > high))
        or (isinstance(value, float) and not math.isfinite(value))
    )
    if bad:
        raise _refuse(f, value if shown is None else shown)
