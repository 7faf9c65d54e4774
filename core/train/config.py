"""Run settings: one typed, frozen schema shared by the UI, the CLI and the worker.

Each field carries its own rules in `metadata` (kind, choices, range, help, and for settings
that only some optimizers or schedules read, which ones and their defaults there). The Train
page renders its widgets from this schema, `studio train` / `submit` generate their flags from
it, and `from_dict` validates against it: one source of truth, three faces.

Plain dataclasses rather than pydantic: see the README ("Run settings") for the measured reasons.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import SettingsError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULERS = ("none", "step", "cosine", "onecycle")
LOSSES = ("auto", "cross_entropy", "mse")
PRECISIONS = ("auto", "bf16", "fp32")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda|cuda:\d+)$")
DEVICE_FORMS = ("auto", "cpu", "cuda", "cuda:N", "mps")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N (N = 0, 1, ...), mps"


def _setting(default: Any, kind: str, help: str, **rules: Any) -> Any:
    """A dataclass field whose metadata describes how to validate and render it.

    `depends_on="optimizer", defaults={"sgd": 0.9}` says the setting is read only by those
    optimizers, with that default for each; given to another, it is refused."""
    return field(default=default, metadata={"kind": kind, "help": help, **rules})


@dataclass(frozen=True)
class TrainConfig:
    """How to train a model. Invalid values are refused at construction with a SettingsError."""

    # length of training: exactly one of epochs / steps
    epochs: int | None = _setting(
        10,
        "int",
        "passes over the training set (or set steps instead)",
        minimum=1,
        optional=True,
        exclusive="length",
    )  # 10 passes suit the small built-in datasets
    steps: int | None = _setting(
        None,
        "int",
        "optimizer steps to run instead of whole epochs",
        minimum=1,
        optional=True,
        exclusive="length",
    )
    batch_size: int = _setting(
        64, "int", "samples per optimizer step", minimum=1
    )  # fast on CPU and GPU, and still generalizes well
    # optimizer and its own parameters; those left unset take the optimizer's default
    optimizer: str = _setting("adam", "choice", "update rule", choices=OPTIMIZERS)
    # Adam needs little tuning, so it is the safest default for a person new to training
    lr: float = _setting(1e-3, "float", "learning rate", minimum=0.0, exclusive_minimum=True)
    momentum: float | None = _setting(
        None,
        "float",
        "momentum: how much of the previous update each step keeps",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
        optional=True,
        depends_on="optimizer",
        defaults={"sgd": 0.9, "rmsprop": 0.0},
    )  # plain SGD without momentum is needlessly slow; RMSprop is usually run without
    nesterov: bool = _setting(
        False,
        "bool",
        "Nesterov momentum (needs momentum > 0)",
        depends_on="optimizer",
        defaults={"sgd": False},
    )
    betas: tuple[float, float] | None = _setting(
        None,
        "float_pair",
        "decay rates of the running mean of gradients and of their squares",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
        optional=True,
        depends_on="optimizer",
        defaults={"adam": (0.9, 0.999), "adamw": (0.9, 0.999)},
    )  # PyTorch's defaults, right for almost every model
    eps: float | None = _setting(
        None,
        "float",
        "term added to denominators for numerical stability",
        minimum=0.0,
        exclusive_minimum=True,
        optional=True,
        depends_on="optimizer",
        defaults={"adam": 1e-8, "adamw": 1e-8, "rmsprop": 1e-8, "adagrad": 1e-8},
    )
    alpha: float | None = _setting(
        None,
        "float",
        "smoothing constant of the running mean of squared gradients",
        minimum=0.0,
        maximum=1.0,
        exclusive_maximum=True,
        optional=True,
        depends_on="optimizer",
        defaults={"rmsprop": 0.99},
    )
    weight_decay: float | None = _setting(
        None,
        "float",
        "L2 penalty on the weights",
        minimum=0.0,
        optional=True,
        depends_on="optimizer",
        defaults={"sgd": 0.0, "adam": 0.0, "adamw": 0.01, "rmsprop": 0.0, "adagrad": 0.0},
    )  # each optimizer's own default: decoupled decay is AdamW's point
    # learning-rate schedule; stepped after every optimizer step
    scheduler: str = _setting("none", "choice", "learning-rate schedule", choices=SCHEDULERS)
    step_size: int | None = _setting(
        None,
        "int",
        "epochs between learning-rate drops",
        minimum=1,
        optional=True,
        depends_on="scheduler",
        defaults={"step": 5},
    )
    gamma: float | None = _setting(
        None,
        "float",
        "factor applied to the learning rate at each drop",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
        optional=True,
        depends_on="scheduler",
        defaults={"step": 0.1},
    )  # a 10x drop is the classic step schedule
    max_lr: float | None = _setting(
        None,
        "float",
        "peak learning rate of the cycle; not set = lr",
        minimum=0.0,
        exclusive_minimum=True,
        optional=True,
        depends_on="scheduler",
        defaults={"onecycle": None},
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
    processes: int = _setting(
        1,
        "int",
        "processes training this run together (torchrun + DistributedDataParallel): one per "
        "GPU on CUDA, CPU processes otherwise; the batch is shared out, batch_size stays global",
        minimum=1,
        maximum=64,
    )
    grad_clip: float | None = _setting(
        None,
        "float",
        "clip the gradient norm to this value; not set = no clipping",
        minimum=0.0,
        exclusive_minimum=True,
        optional=True,
    )
    early_stopping_patience: int | None = _setting(
        None,
        "int",
        "stop after this many epochs without a lower validation loss; not set = never",
        minimum=1,
        optional=True,
        flag="patience",  # the CLI's name for it, shorter to type
    )
    seed: int = _setting(0, "int", "same seed, same result (on CPU)", minimum=0, maximum=2**63 - 1)
    log_every: int = _setting(
        25, "int", "steps between recorded training-loss points", minimum=1
    )  # one host sync per 25 steps costs nothing measurable and still draws a smooth curve
    # fine-tuning (fastai's fine_tune): the body is every block before the model's last
    # (the head); blocks the spec marks "frozen" stay frozen whatever these say
    freeze_epochs: int = _setting(
        0,
        "int",
        "epochs to train only the head (body frozen) before unfreezing everything; 0 = none",
        minimum=0,
    )
    body_lr_factor: float = _setting(
        1.0,
        "float",
        "the body's learning rate is lr times this (discriminative learning rates; e.g. 0.1 "
        "when fine-tuning pretrained weights)",
        minimum=0.0,
        maximum=1.0,
        exclusive_minimum=True,
    )

    def __post_init__(self) -> None:
        fields = dataclasses.fields(self)
        for f in fields:
            _check_value(f, getattr(self, f.name))
        for f in fields:
            _check_used(f, self)
        if self.epochs is None and self.steps is None:
            raise SettingsError("set either epochs or steps (both are empty)")
        if self.epochs is not None and self.steps is not None:
            raise SettingsError(
                f"set either epochs or steps, not both (epochs={self.epochs}, steps={self.steps}); "
                "for a run of steps set epochs to None (from_dict does this when only steps is given)"
            )
        if self.nesterov and not self.effective("momentum"):
            raise SettingsError(
                f"nesterov=True needs momentum > 0 (momentum={self.effective('momentum')})"
            )
        if self.loss == "mse" and self.label_smoothing > 0:
            raise SettingsError(
                f"label_smoothing={self.label_smoothing} applies to cross-entropy only; "
                "set it to 0 or use loss 'auto' or 'cross_entropy'"
            )

    def effective(self, name: str) -> Any:
        """The value the run uses: the one given, else the default of the chosen optimizer or
        schedule (momentum 0.9 for sgd, 0 for rmsprop...)."""
        f = _FIELDS[name]
        if not _is_unset(f, self):
            return getattr(self, name)
        return default_for(name, _choices_of(self, f))

    # ---- conversion -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (betas as a list); `from_dict(to_dict())` round-trips."""
        out = dataclasses.asdict(self)
        if self.betas is not None:
            out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from JSON / CLI / form values; refuses unknown keys and wrong types.

        Giving `steps` without `epochs` means "steps instead of epochs" (epochs becomes None).
        """
        if not isinstance(values, Mapping):
            raise SettingsError(f"run settings must be a mapping, got {type(values).__name__}")
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise SettingsError(
                f"unknown run setting{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; allowed: {', '.join(_FIELDS)}"
            )
        kwargs = {name: _coerce(_FIELDS[name], value) for name, value in values.items()}
        if kwargs.get("steps") is not None and "epochs" not in kwargs:
            kwargs["epochs"] = None
        return cls(**kwargs)

    @classmethod
    def from_stored(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Rebuild the config of a recorded run (checked at submission; no dataset checks).

        Runs recorded before settings were refused for optimizers that ignore them carry, say,
        momentum for adam; those runs ignored it, so it is dropped here and they train as
        before."""
        return cls.from_dict(
            {k: v for k, v in values.items() if k not in _FIELDS or applies(k, values)}
        )

    @classmethod
    def checked(
        cls,
        settings: TrainConfig | Mapping[str, Any] | None,
        *,
        train_size: int | None,
        task: str | None,
        has_validation: bool = True,
        check_device: bool = True,
    ) -> TrainConfig:
        """The one check at submission: settings (a config, CLI / form / JSON values, or None
        for the defaults) -> a TrainConfig valid for this training set (and this machine's
        devices with `check_device`). What the worker and the loop receive is this result."""
        if settings is None:
            config = cls()
        elif isinstance(settings, TrainConfig):
            config = settings
        else:
            config = cls.from_dict(settings)
        config.validate(
            train_size=train_size,
            task=task,
            has_validation=has_validation,
            check_device=check_device,
        )
        return config

    @classmethod
    def schema(cls) -> list[dict[str, Any]]:
        """Every setting with its default, kind, rules and help text (for widgets, flags, docs)."""
        return [{"name": f.name, "default": f.default, **f.metadata} for f in _FIELDS.values()]

    # ---- checks that need the dataset or the machine ---------------------------------------

    def validate(
        self,
        *,
        train_size: int | None = None,
        task: str | None = None,
        has_validation: bool = True,
        check_device: bool = True,
    ) -> None:
        """Refuse settings that cannot work for this training set or on this machine (the part
        of `checked` that needs the dataset; call `checked` at submission)."""
        if train_size is not None:
            if train_size < 1:
                raise SettingsError("the training set is empty; there is nothing to train on")
            if self.batch_size > train_size:
                raise SettingsError(
                    f"batch_size={self.batch_size} is larger than the training set "
                    f"({train_size} samples); choose at most {train_size}"
                )
        if self.early_stopping_patience and not has_validation:
            raise SettingsError(
                "early_stopping_patience needs a validation split, and this dataset has none"
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
        if self.processes > 1:
            from core.train.distributed import check_processes

            check_processes(self, train_size=train_size, check_device=check_device)
        if check_device:
            from core.train.devices import resolve_device

            device = resolve_device(self.device)
            if self.precision == "bf16" and device.type != "cuda":
                raise SettingsError(
                    f"precision 'bf16' needs a CUDA device; device {self.device!r} is "
                    f"{device}: use precision 'auto' or 'fp32'"
                )


_FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(TrainConfig)}


# ---- settings that only some optimizers or schedules read ------------------------------------


def applies(name: str, settings: Mapping[str, Any]) -> bool:
    """Whether setting `name` is read, given the choices in `settings` (missing choices take
    their defaults): momentum applies to sgd and rmsprop, step_size to the step schedule."""
    meta = _FIELDS[name].metadata
    owner = meta.get("depends_on")
    return owner is None or _choice(owner, settings) in meta["defaults"]


def default_for(name: str, settings: Mapping[str, Any]) -> Any:
    """The default of `name` for the choices in `settings` (0.01 weight decay for adamw)."""
    f = _FIELDS[name]
    owner = f.metadata.get("depends_on")
    if owner is None:
        return f.default
    return f.metadata["defaults"].get(_choice(owner, settings), f.default)


def describe_use(entry: Mapping[str, Any]) -> str:
    """Which choices read a setting and its default for each, in words, from a `schema()` entry:
    "used with optimizer sgd or rmsprop (default 0.9 for sgd, 0 for rmsprop)"; empty for
    settings that every run reads."""
    owner = entry.get("depends_on")
    if owner is None:
        return ""
    defaults = entry["defaults"]
    everyone = set(defaults) == set(_FIELDS[owner].metadata["choices"])
    by_value: dict[str, list[str]] = {}
    for choice, value in defaults.items():
        if value is not None:
            shown = ("on" if value else "off") if isinstance(value, bool) else _shown(value)
            by_value.setdefault(shown, []).append(choice)
    text = "" if everyone else f"used with {owner} {_or_list(list(defaults))}"
    if len(by_value) == 1 and not everyone:
        return f"{text} (default {next(iter(by_value))})"
    groups = sorted(by_value.items(), key=lambda item: len(item[1]))
    parts = [
        f"{value} for " + ("the others" if everyone and i == len(groups) - 1 else ", ".join(users))
        for i, (value, users) in enumerate(groups)
    ]
    if not parts:
        return text
    return (f"{text} " if text else "") + f"(default {'; '.join(parts)})"


def _or_list(words: list[str]) -> str:
    """'a', 'a or b', 'a, b or c'."""
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _choice(owner: str, settings: Mapping[str, Any]) -> Any:
    value = settings.get(owner)
    return _FIELDS[owner].default if value is None else value


def _choices_of(config: TrainConfig, f: dataclasses.Field) -> dict[str, Any]:
    """The choice `f` depends on, as a mapping for `applies` / `default_for`."""
    owner = f.metadata.get("depends_on")
    return {} if owner is None else {owner: getattr(config, owner)}


def _is_unset(f: dataclasses.Field, config: TrainConfig) -> bool:
    return getattr(config, f.name) == f.default


def _check_used(f: dataclasses.Field, config: TrainConfig) -> None:
    """Refuse a setting given to an optimizer (or schedule) that would silently ignore it."""
    owner = f.metadata.get("depends_on")
    if owner is None or _is_unset(f, config) or applies(f.name, _choices_of(config, f)):
        return
    users = _or_list([repr(c) for c in f.metadata["defaults"]])
    raise SettingsError(
        f"{f.name}={_shown(getattr(config, f.name))} is not used by {owner} "
        f"{getattr(config, owner)!r}; only {owner} {users} use it: choose one of those or "
        f"leave {f.name} unset"
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


def _shown(value: Any) -> str:
    """A value as a person writes it: 0.9, 1e-08, (0.9, 0.999), True."""
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_shown(v) for v in value) + ")"
    return repr(value)


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
