"""Initial weights of a fresh run: copied from an earlier run, or a given state dict.

A run whose `origin` carries `"init"` starts from weights instead of PyTorch's random ones:

- `{"from_run": N}`: every block (a top-level layer of the spec model: conv1, fc3, backbone)
  whose tensors all exist in run N's latest checkpoint with the same names and shapes is
  copied; the others start fresh. A head with another number of classes is therefore replaced
  by itself. The report says which blocks were loaded, which are new, and which were skipped
  and why ("conv2 has 32 output channels in run 4, 16 here").
- `{"weights": PATH}`: a `.safetensors` (or weights-only `.pt`) state dict that must fit the
  model exactly (compression fine-tunes a pruned model this way).

Pretrained Backbone blocks (`weights: "imagenet"` or a file) are loaded here too, before the
run's own `init`, so a parent run's weights win over ImageNet's. A resumed run loads its own
checkpoint instead and never comes here. Everything is read with `weights_only=True` or
safetensors: no pickled code runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.errors import NotFoundError, TrainingError


@dataclass
class InitReport:
    """What a fresh run's initial weights came from, block by block."""

    from_run: int | None = None
    weights: str | None = None  # the state-dict file of {"weights": PATH}
    loaded: list[str] = field(default_factory=list)  # blocks copied whole
    new: list[str] = field(default_factory=list)  # blocks the source does not have
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"name", "reason"}
    pretrained: list[dict[str, str]] = field(default_factory=list)  # Backbone weights loaded

    def to_dict(self) -> dict[str, Any]:
        """The `train --json` "init" object."""
        out: dict[str, Any] = {
            "from_run": self.from_run,
            "loaded": list(self.loaded),
            "new": list(self.new),
            "skipped": [dict(s) for s in self.skipped],
        }
        if self.weights is not None:
            out["weights"] = self.weights
        if self.pretrained:
            out["pretrained"] = [dict(p) for p in self.pretrained]
        return out

    def __getitem__(self, key: str) -> Any:  # report["loaded"], as the interface note reads
        return self.to_dict()[key]

    def sentence(self) -> str:
        """One line for people: 'from run 4: 5 blocks loaded, 1 new (fc3), 1 skipped (...)'."""
        source = f"run {self.from_run}" if self.from_run is not None else self.weights or "?"
        parts = [f"{len(self.loaded)} block{'s' if len(self.loaded) != 1 else ''} loaded"]
        if self.new:
            parts.append(f"{len(self.new)} new ({', '.join(self.new)})")
        if self.skipped:
            parts.append(
                f"{len(self.skipped)} skipped ("
                + "; ".join(f"{s['reason']}" for s in self.skipped)
                + ")"
            )
        return f"from {source}: " + ", ".join(parts)


# ---- the hook the worker calls ----------------------------------------------------------------


def initial_state(origin: dict | None, model: nn.Module) -> InitReport | None:
    """Load a fresh run's initial weights into `model` as `origin["init"]` says (and any
    pretrained Backbone weights its spec names); the report, or None when the model keeps
    its random initialization. TrainingError / NotFoundError name what cannot be loaded."""
    from core.layers.backbone import load_pretrained_backbones

    init = (origin or {}).get("init")
    if init is None:
        pretrained = load_pretrained_backbones(model)
        return InitReport(pretrained=pretrained) if pretrained else None
    if not isinstance(init, dict) or not ({"from_run"} <= set(init) or {"weights"} <= set(init)):
        raise TrainingError(
            f'origin "init" must be {{"from_run": RUN_ID}} or {{"weights": PATH}}; got {init!r:.80}'
        )
    if "weights" in init:
        report = load_weights_file(model, Path(init["weights"]))
        return report  # the file holds every weight, a Backbone's included
    parent_run = int(init["from_run"])
    source, _ = parent_weights(parent_run)
    report, matching = compare(source, model, from_run=parent_run)
    # ImageNet weights only for the backbones the parent does not provide (no download then)
    report.pretrained = load_pretrained_backbones(model, skip=set(report.loaded))
    model.load_state_dict(matching, strict=False)
    return report


def load_weights_file(model: nn.Module, path: Path) -> InitReport:
    """Load a state-dict file that must fit `model` exactly (names and shapes)."""
    from core.train.checkpoint import load_weights

    weights = read_state_dict(path)
    load_weights(model, weights, path)
    return InitReport(weights=str(path), loaded=sorted(_blocks(model.state_dict())))


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A `.safetensors` file, or a `.pt`/`.pth` file read with weights_only=True (a bare state
    dict or a Model Studio checkpoint's "model")."""
    if not path.is_file():
        raise NotFoundError(f"weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own SafetensorError
            raise TrainingError(f"weights file {path} cannot be read: {error}") from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise TrainingError(
            f"weights file {path} cannot be read as a weights-only state dict: {first[:200]}"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise TrainingError(f"weights file {path} is not a state dict (names -> tensors)")
    return state


def parent_weights(run_id: int) -> tuple[dict[str, torch.Tensor], str]:
    """The model weights in run `run_id`'s latest checkpoint, and that file's path."""
    from core.runs.reading import get_run, list_checkpoints
    from core.train.checkpoint import load_checkpoint

    run = get_run(run_id)  # NotFoundError naming the run
    checkpoints = list_checkpoints(run.id)
    if not checkpoints:
        raise NotFoundError(
            f"run {run.id} ({run.status}) has no checkpoint to start from yet; one is written "
            "at its first epoch end"
        )
    path = checkpoints[-1].path
    return load_checkpoint(path)["model"], path


# ---- comparing two sets of weights ------------------------------------------------------------


def compare(
    source: dict[str, torch.Tensor], model: nn.Module, *, from_run: int | None
) -> tuple[InitReport, dict[str, torch.Tensor]]:
    """Which blocks of `model` can take `source`'s tensors (all names and shapes equal); the
    report and the tensors to load."""
    where = f"run {from_run}" if from_run is not None else "the source"
    report = InitReport(from_run=from_run)
    matching: dict[str, torch.Tensor] = {}
    own = model.state_dict()
    theirs_by_block = _blocks(source)
    for block, names in _blocks(own).items():
        theirs = theirs_by_block.get(block, [])
        if not theirs:
            report.new.append(block)
            continue
        reason = _mismatch(block, model, names, theirs, own, source, where)
        if reason is None:
            report.loaded.append(block)
            matching.update({name: source[name] for name in names})
        else:
            report.skipped.append({"name": block, "reason": reason})
    return report, matching


def _blocks(state: dict[str, Any]) -> dict[str, list[str]]:
    """Tensor names grouped by their top-level module (the spec's layer), in order."""
    groups: dict[str, list[str]] = {}
    for name in state:
        groups.setdefault(name.split(".", 1)[0], []).append(name)
    return groups


def _mismatch(
    block: str,
    model: nn.Module,
    names: list[str],
    theirs: list[str],
    own: dict[str, torch.Tensor],
    source: dict[str, torch.Tensor],
    where: str,
) -> str | None:
    """Why `block` cannot be copied (in words), or None when every tensor fits."""
    if set(names) != set(theirs):
        kind = type(getattr(model, block, None)).__name__
        return (
            f"{block} is another kind of layer in {where} (its weights differ from this {kind}'s)"
        )
    for name in names:
        here, there = tuple(own[name].shape), tuple(source[name].shape)
        if here != there:
            return _shape_reason(block, name, there, here, where, model)
    return None


def _shape_reason(
    block: str,
    name: str,
    there: tuple[int, ...],
    here: tuple[int, ...],
    where: str,
    model: nn.Module,
) -> str:
    """'conv2 has 32 output channels in run 4, 16 here' for the common layers, else shapes."""
    module = getattr(model, block, None)
    is_weight = name == f"{block}.weight" and len(here) == len(there) and len(here) >= 2
    if is_weight and isinstance(module, nn.Linear):
        if here[0] != there[0]:
            what = f"{block} has {there[0]} outputs in {where}, {here[0]} here"
            if getattr(model, "_output", None) == block:
                what += " (another number of classes: the head starts fresh)"
            return what
        return f"{block} reads {there[1]} features in {where}, {here[1]} here"
    if is_weight and isinstance(module, nn.Conv1d | nn.Conv2d):
        if here[0] != there[0]:
            return f"{block} has {there[0]} output channels in {where}, {here[0]} here"
        if here[1] != there[1]:
            return f"{block} reads {there[1]} channels in {where}, {here[1]} here"
        return f"{block} has kernel {list(there[2:])} in {where}, {list(here[2:])} here"
    return f"{name} is {list(there)} in {where}, {list(here)} here"


# ---- before launch ------------------------------------------------------------------------------


def preview_init(spec: dict[str, Any], dataset: str, from_run: int) -> InitReport:
    """What `--init-from from_run` would load into `spec` trained on `dataset`, before launch:
    nothing is trained or written. SpecError / NotFoundError / TrainingError as a launch would."""
    from core.builder import check_model, model_from_trace
    from core.data import describe_dataset

    facts = describe_dataset(dataset).facts
    with torch.device("meta"):  # shapes only: no weights allocated for the preview
        model = model_from_trace(check_model(spec, facts, finished=True))
    source, _ = parent_weights(int(from_run))
    report, _ = compare(source, model, from_run=int(from_run))
    return report


def init_origin(from_run: int) -> dict[str, Any]:
    """The `origin` a run started with `--init-from from_run` records."""
    return {"kind": "init-from", "from_run": int(from_run), "init": {"from_run": int(from_run)}}
