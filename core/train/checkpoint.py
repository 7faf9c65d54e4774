"""Checkpoints: atomic writes, safe loads, and the RNG states a bit-exact resume needs.

A state holds only tensors, dicts, lists, tuples, ints, floats, bools, strings and None, so
`torch.load(weights_only=True)` reads it and no pickled code ever runs.
"""

from __future__ import annotations

import io
import os
import pickle
import random
import re
import zipfile
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import TrainingError
from core.train.policy import EarlyStopping

FORMAT_VERSION = 1
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # terminal colour codes in PyTorch's messages
_REASON = "WeightsUnpickler error:"
RESUME_MUST_MATCH = ("batch_size", "seed", "optimizer", "scheduler")  # settings a resume keeps


# ---- what a checkpoint holds --------------------------------------------------------------


@dataclass
class LoopProgress:
    """The loop's own resumable counters. With the model, optimizer, scheduler and RNG states
    (see `capture_state`) this is the whole list of what a bit-exact resume needs; a field
    added here is saved and restored with no other change."""

    step: int = 0  # optimizer steps done; epoch and position follow from it
    pending_losses: list[torch.Tensor] = field(default_factory=list)  # unrecorded, on device
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    best_val_accuracy: float | None = None
    last_val_step: int = -1
    metrics: dict[str, float] = field(default_factory=dict)  # latest value of each metric


@dataclass(frozen=True)
class Plan:
    """What a checkpoint was planned for; a resume under another plan is refused."""

    steps_per_epoch: int
    total_steps: int
    config: dict[str, Any]  # TrainConfig.to_dict()


def capture_state(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    progress: LoopProgress,
    plan: Plan,
) -> dict[str, Any]:
    """Everything a bit-exact resume needs, as CPU copies of plain values and tensors."""
    epoch, position = divmod(progress.step, plan.steps_per_epoch)
    return {
        "format": FORMAT_VERSION,
        "model": to_cpu_copy(model.state_dict()),
        "optimizer": to_cpu_copy(optimizer.state_dict()),
        "scheduler": to_cpu_copy(scheduler.state_dict()) if scheduler is not None else None,
        "rng": capture_rng_state(),
        "steps_per_epoch": plan.steps_per_epoch,
        "total_steps": plan.total_steps,
        "config": dict(plan.config),
        "epoch": epoch,  # completed epochs and the position in the next: for readers only,
        "position": position,  # a resume derives both from `step`
        **{f.name: _encode(getattr(progress, f.name)) for f in fields(LoopProgress)},
    }


def restore_state(
    state: dict[str, Any],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None,
    plan: Plan,
    device: torch.device,
) -> LoopProgress:
    """Inverse of `capture_state`: loads the model, optimizer, scheduler and RNG states in
    place and returns the loop's counters. TrainingError when the state does not fit `plan`."""
    _check_plan(state, plan)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise TrainingError(f"the checkpoint does not fit this model: {error}") from None
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"])
    values = {}
    for f in fields(LoopProgress):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        values[f.name] = _decode(state.get(f.name, default), default, device)
    return LoopProgress(**values)


def _encode(value: Any) -> Any:
    if isinstance(value, EarlyStopping):
        return asdict(value)
    if isinstance(value, list):  # the pending per-step losses, as one CPU tensor
        if not value:
            return torch.zeros(0, dtype=torch.float32)
        return torch.stack(value).detach().float().cpu()
    if isinstance(value, dict):
        return dict(value)
    return value


def _decode(saved: Any, default: Any, device: torch.device) -> Any:
    if isinstance(default, EarlyStopping):
        return saved if isinstance(saved, EarlyStopping) else EarlyStopping(**saved)
    if isinstance(default, list):
        return [loss.to(device) for loss in saved.unbind()] if len(saved) else []
    if isinstance(default, dict):
        return dict(saved)
    return saved


def _check_plan(state: dict[str, Any], plan: Plan) -> None:
    if state.get("format") != FORMAT_VERSION:
        raise TrainingError(
            f"checkpoint format {state.get('format')!r} is not supported (expected "
            f"{FORMAT_VERSION})"
        )
    saved, now = state.get("config", {}), plan.config
    for key in RESUME_MUST_MATCH:
        if key in saved and saved[key] != now.get(key):
            raise TrainingError(
                f"cannot resume: the checkpoint was trained with {key}={saved[key]!r} but "
                f"the settings now say {key}={now.get(key)!r}"
            )
    if state["steps_per_epoch"] != plan.steps_per_epoch:
        raise TrainingError(
            f"cannot resume: the checkpoint had {state['steps_per_epoch']} batches per epoch "
            f"and this training set gives {plan.steps_per_epoch}; is it the same dataset?"
        )
    scheduler = now.get("scheduler")
    if state["total_steps"] != plan.total_steps and scheduler in ("cosine", "onecycle"):
        raise TrainingError(
            f"cannot resume: the {scheduler} schedule was planned for "
            f"{state['total_steps']} steps, the settings now give {plan.total_steps}"
        )
    if state["step"] > plan.total_steps:
        raise TrainingError(
            f"cannot resume: the checkpoint is at step {state['step']}, beyond the "
            f"{plan.total_steps} steps these settings run"
        )


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path | str:
    """Write `state` to `path` (a local path or an artifact URL, core.artifacts) atomically:
    a temp file in the same folder, fsync, rename; on an object store one whole upload.

    A crash mid-write leaves the previous file at `path` untouched. Returns a Path for a local
    target, the URL for a remote one."""
    from core import artifacts

    written = artifacts.write_atomic(path, lambda handle: torch.save(state, handle))
    return written if artifacts.is_remote(written) else Path(written)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint onto the CPU with `weights_only=True`; TrainingError when unusable.
    `path` is a local path or an artifact URL (core.artifacts)."""
    from core import artifacts

    source = path if artifacts.is_remote(path) else Path(str(path).removeprefix("file://"))
    if not artifacts.exists(source):
        raise TrainingError(f"checkpoint {source} does not exist")
    try:
        if isinstance(source, Path):
            state = torch.load(source, map_location="cpu", weights_only=True)
        else:  # remote: read whole (object stores do not seek cheaply), then unpickle safely
            with artifacts.open_read(source) as handle:
                data = io.BytesIO(handle.read())
            state = torch.load(data, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # only PyTorch's reason, never its colour codes or its "if you trust the source" hint
        lines = [_ANSI.sub("", line).strip() for line in str(error).splitlines()]
        reason = next((x.split(":", 1)[1].strip() for x in lines if x.startswith(_REASON)), "")
        reason = reason.split(". Please use", 1)[0]  # the rest tells how to allow it anyway
        raise TrainingError(
            f"checkpoint {source} was refused: it contains objects other than tensors and plain "
            "values, which are never loaded" + (f" ({reason})" if reason else "")
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as error:
        raise TrainingError(
            f"checkpoint {source} cannot be read (truncated or not a checkpoint): "
            + _ANSI.sub("", str(error)).strip().splitlines()[0]
        ) from None
    if not isinstance(state, dict) or "model" not in state:
        raise TrainingError(f"checkpoint {source} is not a Model Studio checkpoint (no model)")
    return state


def load_weights(model: torch.nn.Module, weights: Any, source: str | os.PathLike[str]) -> None:
    """Put a checkpoint's model weights into `model`; TrainingError naming what does not fit
    (a model that is not named tensors, weights missing, extra or of another shape) instead
    of PyTorch's page-long message."""
    named_tensors = isinstance(weights, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()
    )
    if not named_tensors:
        kind = type(weights).__name__ if not isinstance(weights, dict) else "a dict of other values"
        raise TrainingError(
            f"checkpoint {source} is not a Model Studio checkpoint: its model is {kind}, not "
            "named weight tensors"
        )
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    reshaped = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(expected[k].shape)}"
        for k in expected
        if k in weights and weights[k].shape != expected[k].shape
    ]
    problems = [
        f"{len(names)} {what} ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"
        for names, what in (
            (missing, "weights missing"),
            (extra, "weights it does not have"),
            (reshaped, "of another shape, checkpoint vs model"),
        )
        if names
    ]
    if problems:
        raise TrainingError(
            f"checkpoint {source} belongs to another architecture than this run's spec: "
            + "; ".join(problems)
        )
    model.load_state_dict(weights)


# ---- RNG states ---------------------------------------------------------------------------


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and CUDA), numpy and python RNG states as weights_only-loadable values."""
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {
            "kind": str(np_kind),
            "keys": torch.from_numpy(np.asarray(np_keys, dtype=np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "python": {"version": int(py_version), "internal": list(py_internal), "gauss": py_gauss},
    }


def restore_rng_state(rng: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    numpy_state = rng["numpy"]
    np.random.set_state(
        (
            numpy_state["kind"],
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["pos"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    python_state = rng["python"]
    random.setstate(
        (python_state["version"], tuple(python_state["internal"]), python_state["gauss"])
    )


def to_cpu_copy(value: Any) -> Any:
    """Deep copy with every tensor detached and cloned to the CPU (safe to save later)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: to_cpu_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_cpu_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_cpu_copy(item) for item in value)
    return value
