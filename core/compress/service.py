"""Compressing a trained run: prune and/or quantize it, fine-tune it, and measure before/after.

`compress_run(run_id, CompressOptions(prune=0.5, finetune_epochs=3))` is what `studio
compress` and the Compress page call. Everything a compression makes lands in one folder under
`settings.compressed_dir / run-N /`, laid out like a serving folder (spec.json,
weights.safetensors, contract.json, and model.onnx for int8), so `studio serve FOLDER` serves it
and Build opens its spec. A fine-tune is a new run with the parent's settings that starts from
the pruned weights and records its parent (lineage).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from core.compress.agreement import AGREEMENT_SAMPLES, Agreement, attribution_agreement
from core.compress.measure import (
    Figures,
    Predictor,
    count_params,
    flops_per_sample,
    latency_inputs,
    onnx_predictor,
    save_weights,
    side_by_side_latency,
    test_accuracy,
    torch_predictor,
)
from core.compress.structured import check_ratio
from core.config import get_settings
from core.errors import CompressError
from core.states import RunStatus

Method = Literal["structured", "unstructured"]
METHODS: tuple[Method, ...] = ("structured", "unstructured")
SPEC_FILE = "spec.json"
WEIGHTS_FILE = "weights.safetensors"  # the compressed model (fine-tuned, when it was here)
PRUNED_FILE = "pruned.safetensors"  # the pruned weights a fine-tune starts from
CONTRACT_FILE = "contract.json"
INT8_FILE = "model.onnx"  # the name a serving folder's ONNX model has
FLOAT_FILE = "model-float32.onnx"
PARENT_FLOAT_FILE = "parent-float32.onnx"
REPORT_FILE = "report.json"
# progress(stage, done, total): stages in words ("pruning", "fine-tuning", ...) and, while
# fine-tuning in the foreground, training steps
Progress = Callable[[str, int, int], None]


@dataclass
class CompressOptions:
    """What to do to a run. `settings`: fine-tune settings that differ from the parent's."""

    prune: float | None = None  # share of channels (structured) or weights (unstructured)
    method: Method = "structured"
    finetune_epochs: int = 0
    int8: bool = False
    foreground: bool = False  # fine-tune here, like `studio train`, instead of queueing it
    settings: dict[str, Any] = field(default_factory=dict)
    samples: int = AGREEMENT_SAMPLES  # test samples for the attribution agreement
    repeats: int = 30  # latency calls per model and batch size

    def checked(self) -> CompressOptions:
        """The options, or CompressError saying what would be right."""
        if self.method not in METHODS:
            raise CompressError(
                f"unknown pruning method {self.method!r}; use structured or unstructured"
            )
        if self.prune is not None:
            self.prune = check_ratio(self.prune)
        if self.prune is None and not self.int8:
            raise CompressError("nothing to do: give --prune RATIO (e.g. 0.5) and/or --int8")
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise CompressError(
                f"--finetune-epochs must be a whole number >= 0, got {self.finetune_epochs!r}"
            )
        if self.finetune_epochs and self.prune is None:
            raise CompressError("a fine-tune follows pruning; add --prune RATIO or drop it")
        if self.finetune_epochs and self.method == "unstructured":
            raise CompressError(
                "unstructured pruning cannot be fine-tuned here: training has no masks, so it "
                "would fill the zeroed weights in again; use --finetune-epochs 0, or "
                "--structured"
            )
        if self.finetune_epochs and self.int8 and not self.foreground:
            raise CompressError(
                "--int8 after a queued fine-tune would quantize the model before it is "
                "fine-tuned; add --foreground to fine-tune here first, or quantize the new run "
                "once it has finished (`studio compress NEW_RUN --int8`)"
            )
        if self.samples < 1 or self.repeats < 1:
            raise CompressError("samples and repeats must be at least 1")
        return self

    @property
    def description(self) -> str:
        """The method in words: 'structured 50%', 'unstructured 70% + int8', 'int8'."""
        parts = [f"{self.method} {self.prune:.0%}"] if self.prune is not None else []
        return " + ".join(parts + (["int8"] if self.int8 else []))


@dataclass
class CompressionReport:
    """The before/after table and everything the compression made."""

    run_id: int | None  # the compressed run (the fine-tune), when there is one
    parent_run_id: int
    before: Figures
    after: Figures
    attribution_agreement: Agreement | None
    method: str
    folder: Path | None
    pruning: dict[str, Any] | None = None  # StructuredResult / UnstructuredResult .to_dict()
    int8: dict[str, Any] | None = None
    finetune: dict[str, Any] | None = None  # {"run_id", "status", "epochs"}
    spec: dict[str, Any] | None = None  # the compressed model's spec (opens in Build)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The `studio compress --json` document."""
        agreement = self.attribution_agreement
        return {
            "run_id": self.run_id,
            "parent_run_id": self.parent_run_id,
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "attribution_agreement": agreement.to_dict() if agreement else None,
            "method": self.method,
            "folder": str(self.folder) if self.folder else None,
            "pruning": self.pruning,
            "int8": self.int8,
            "finetune": self.finetune,
            "spec": self.spec,
            "notes": list(self.notes),
        }


def _noop(stage: str, done: int, total: int) -> None:
    return None


def compress_run(
    run_id: int, options: CompressOptions, *, progress: Progress | None = None
) -> CompressionReport:
    """Prune and/or quantize run `run_id` as `options` say; measure the parent and the result
    side by side. Raises CompressError / NotFoundError (no checkpoint) before writing anything."""
    from core.runs.models import load_run_model

    progress = progress or _noop
    options = options.checked()
    progress("loading the run", 0, 1)
    parent, data, run = load_run_model(run_id)
    model, spec, pruning, notes = _pruned(parent, run, data, options, progress)
    folder = _new_folder(run.id, options)
    try:
        report = _finish(folder, parent, data, run, model, spec, options, progress)
    except BaseException:
        if not (folder / PRUNED_FILE).exists():  # no fine-tune run reads from it: clean up
            shutil.rmtree(folder, ignore_errors=True)
        raise
    report.pruning, report.notes = pruning, notes + report.notes
    (folder / REPORT_FILE).write_text(json.dumps(report.to_json(), indent=1), encoding="utf-8")
    return report


def _finish(
    folder: Path,
    parent: nn.Module,
    data: Any,
    run: Any,
    model: nn.Module,
    spec: dict[str, Any],
    options: CompressOptions,
    progress: Progress,
) -> CompressionReport:
    """Fine-tune, write the serving files, quantize, measure: everything after pruning."""
    notes: list[str] = []
    finetune = None
    child_id = None
    if options.finetune_epochs:
        save_weights(model, folder / PRUNED_FILE)  # where the fine-tune starts from
        child_id, finetune, tuned = _finetune(run, spec, folder, options, progress)
        if tuned is None:
            notes.append(
                f"the fine-tune is queued as run {child_id}; the table shows the pruned model "
                f"before it. `studio compress {child_id}` compares it with run {run.id} once "
                "it has finished"
            )
        model = tuned or model
    _write_serving_files(folder, model, spec, data, run.id)
    int8 = None
    if options.int8:
        progress("quantizing to int8", 0, 1)
        int8 = _quantize(parent, model, data, folder)
    progress("measuring before and after", 0, 1)
    before, after = _measure_pair(parent, run.spec, model, spec, data, folder, options, int8)
    progress("comparing attributions", 0, 1)
    compared = _rounded(model) if options.int8 else model
    agreement = attribution_agreement(
        parent, compared, data, samples=options.samples, what=_what(options)
    )
    return CompressionReport(
        run_id=child_id,
        parent_run_id=run.id,
        before=before,
        after=after,
        attribution_agreement=agreement,
        method=options.description,
        folder=folder,
        int8=int8,
        finetune=finetune,
        spec=spec,
        notes=notes,
    )


def compare_with_parent(
    run_id: int, *, samples: int = AGREEMENT_SAMPLES, repeats: int = 30
) -> CompressionReport:
    """The before/after table of a run made by compression (a fine-tune) against its parent."""
    from core.runs.models import load_run_model
    from core.runs.reading import get_run

    run = get_run(run_id)
    origin = run.origin or {}
    if origin.get("kind") != "compress" or run.parent_run_id is None:
        raise CompressError(
            f"run {run.id} was not made by compression, so there is no before to compare with; "
            f"to compress it give --prune RATIO and/or --int8"
        )
    parent, data, parent_run = load_run_model(run.parent_run_id)
    model, _, _ = load_run_model(run.id)
    options = CompressOptions(samples=samples, repeats=repeats)
    before, after = _measure_pair(
        parent, parent_run.spec, model, run.spec, data, None, options, None
    )
    agreement = attribution_agreement(parent, model, data, samples=samples, what="fine-tuned")
    return CompressionReport(
        run_id=run.id,
        parent_run_id=parent_run.id,
        before=before,
        after=after,
        attribution_agreement=agreement,
        method=str(origin.get("method", "compress")),
        folder=None,
        finetune={
            "run_id": run.id,
            "status": str(run.status),
            "epochs": run.settings.get("epochs"),
        },
        spec=run.spec,
    )


# ---- the steps ------------------------------------------------------------------------------


def _new_folder(run_id: int, options: CompressOptions) -> Path:
    base = get_settings().compressed_dir / f"run-{run_id}"
    tag = options.description.replace(" + ", "-").replace(" ", "-").replace("%", "")
    number = 1
    while (base / f"{tag}-{number}").exists():
        number += 1
    folder = base / f"{tag}-{number}"
    folder.mkdir(parents=True)
    return folder


def _pruned(
    parent: nn.Module, run: Any, data: Any, options: CompressOptions, progress: Progress
) -> tuple[nn.Module, dict[str, Any], dict[str, Any] | None, list[str]]:
    """The pruned model and its spec (the parent's own when not pruning)."""
    if options.prune is None:
        return parent, run.spec, None, []
    progress(f"pruning ({options.method})", 0, 1)
    if options.method == "structured":
        from core.compress.structured import prune_structured

        result = prune_structured(parent, run.spec, data.facts, options.prune)
        spec = dict(result.spec)
        spec["name"] = f"{run.spec.get('name') or 'model'}-pruned-{options.prune:.0%}".replace(
            "%", ""
        )
        notes = [f"{k.name} keeps its size: {k.reason}" for k in result.kept]
        return result.model, spec, result.to_dict(), notes
    from core.compress.unstructured import NOT_FASTER, prune_unstructured

    result = prune_unstructured(parent, options.prune)
    return result.model, run.spec, result.to_dict(), [NOT_FASTER]


def _write_serving_files(
    folder: Path, model: nn.Module, spec: dict[str, Any], data: Any, run_id: int
) -> None:
    from core.serve.contract import contract_for

    (folder / SPEC_FILE).write_text(json.dumps(spec, indent=1), encoding="utf-8")
    save_weights(model, folder / WEIGHTS_FILE)
    contract = contract_for(data, run_id=run_id, model_name=spec.get("name"))
    (folder / CONTRACT_FILE).write_text(json.dumps(contract), encoding="utf-8")


def _finetune(
    run: Any, spec: dict[str, Any], folder: Path, options: CompressOptions, progress: Progress
) -> tuple[int, dict[str, Any], nn.Module | None]:
    """Queue (or train here) the fine-tune of the pruned model as a child run."""
    from core import runs

    settings = {**run.settings, **options.settings, "epochs": options.finetune_epochs}
    settings["steps"] = None
    origin = {
        "kind": "compress",
        "from_run": run.id,
        "method": options.description,
        "init": {"weights": str(folder / PRUNED_FILE)},
    }
    common = {
        "spec": spec,
        "dataset": run.dataset,
        "config": settings,
        "spec_name": spec.get("name"),
        "parent_run_id": run.id,
        "origin": origin,
    }
    if not options.foreground:
        child = runs.submit_run(**common)
        return (
            child,
            {"run_id": child, "status": str(RunStatus.QUEUED), "epochs": options.finetune_epochs},
            None,
        )

    def training(step: int, total: int, latest: dict[str, float]) -> None:
        progress("fine-tuning", step, total)

    result = runs.train_run_foreground(**common, progress=training)
    if result["status"] != RunStatus.COMPLETED:
        raise CompressError(
            f"the fine-tune (run {result['run_id']}) ended {result['status']}: "
            f"{result.get('error') or 'no error recorded'}"
        )
    from core.runs.models import load_run_model

    model, _, _ = load_run_model(result["run_id"])
    status = {
        "run_id": result["run_id"],
        "status": str(RunStatus.COMPLETED),
        "epochs": options.finetune_epochs,
    }
    return result["run_id"], status, model


def _quantize(parent: nn.Module, model: nn.Module, data: Any, folder: Path) -> dict[str, Any]:
    """Float32 ONNX of the compressed model (and of the parent, when they differ), then int8."""
    import onnx

    from core.compress.int8 import quantize_onnx, strip_debug_metadata
    from core.export.onnx import export_onnx

    samples = data.test.x[:8].cpu()
    exported = [(model, folder / FLOAT_FILE)]
    if model is not parent:
        exported.append((parent, folder / PARENT_FLOAT_FILE))
    for source, path in exported:
        export_onnx(source, data.facts, path, samples)
        document = onnx.load(str(path))
        strip_debug_metadata(document)  # both files alike, so their sizes compare fairly
        onnx.save(document, str(path))
    weights = quantize_onnx(folder / FLOAT_FILE, folder / INT8_FILE)
    return {"file": str(folder / INT8_FILE), "float_file": str(folder / FLOAT_FILE), **weights}


def _rounded(model: nn.Module) -> nn.Module:
    from core.compress.int8 import rounded_like_int8

    return rounded_like_int8(model)


def _what(options: CompressOptions) -> str:
    if options.int8 and options.prune is None:
        return "int8"
    return "fine-tuned" if options.finetune_epochs and options.foreground else "pruned"


def _measure_pair(
    parent: nn.Module,
    parent_spec: dict[str, Any],
    model: nn.Module,
    spec: dict[str, Any],
    data: Any,
    folder: Path | None,
    options: CompressOptions,
    int8: dict[str, Any] | None,
) -> tuple[Figures, Figures]:
    """Both columns of the table; torch models on the CPU, or (int8) both as ONNX files."""
    from safetensors.torch import save

    flops_before = flops_per_sample(parent_spec, data.facts)
    flops_after = flops_per_sample(spec, data.facts)
    params_before, nonzero_before = count_params(parent)
    params_after, nonzero_after = count_params(model)
    if int8 is None:
        predictors: dict[str, Predictor] = {
            "before": torch_predictor(parent),
            "after": torch_predictor(model),
        }
        state = {k: v.detach().contiguous() for k, v in parent.state_dict().items()}
        bytes_before = len(save(state))
        bytes_after = (
            (folder / WEIGHTS_FILE).stat().st_size
            if folder
            else len(save({k: v.detach().contiguous() for k, v in model.state_dict().items()}))
        )
        runtime, files = "torch", (None, str(folder / WEIGHTS_FILE) if folder else None)
    else:
        float_path = Path(int8["float_file"])
        parent_path = float_path if model is parent else float_path.with_name(PARENT_FLOAT_FILE)
        int8_path = Path(int8["file"])
        predictors = {"before": onnx_predictor(parent_path), "after": onnx_predictor(int8_path)}
        bytes_before, bytes_after = parent_path.stat().st_size, int8_path.stat().st_size
        runtime, files = "onnxruntime", (str(parent_path), str(int8_path))
    latency = side_by_side_latency(predictors, latency_inputs(data), repeats=options.repeats)
    before = Figures(
        params_before,
        nonzero_before,
        flops_before,
        bytes_before,
        latency["before"],
        test_accuracy(predictors["before"], data),
        runtime,
        files[0],
    )
    after = Figures(
        params_after,
        nonzero_after,
        flops_after,
        bytes_after,
        latency["after"],
        test_accuracy(predictors["after"], data),
        runtime,
        files[1],
    )
    return before, after


def ratio(before: float | None, after: float | None) -> float | None:
    """after / before, None when either is missing or before is zero."""
    if before is None or after is None or not before:
        return None
    return float(np.float64(after) / np.float64(before))


def list_reports(run_id: int) -> list[dict[str, Any]]:
    """The `--json` documents of the compressions made from run `run_id`, newest first (read
    from their folders: a page reload loses none)."""
    base = get_settings().compressed_dir / f"run-{run_id}"
    found = []
    for path in base.glob(f"*/{REPORT_FILE}") if base.is_dir() else ():
        try:
            found.append((path.stat().st_mtime, json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError):
            continue  # a folder being written, or damaged: not a report to show
    return [document for _, document in sorted(found, key=lambda item: -item[0])]
