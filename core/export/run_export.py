"""`export_run`: a saved run to an ONNX file, a pt2 file or a bundle folder, checked.

The file is written next to its destination under a temporary name and renamed into place
only once it has passed the parity check, so a failed or interrupted export leaves nothing
that looks finished. A path given by the caller is never overwritten; the default path
(settings.exports_dir/run-ID/...) is the studio's own and is replaced by a newer export.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import get_settings
from core.errors import ExportError
from core.export import FORMATS

ProgressFn = Callable[[int, int, str], None]  # (steps done, steps in all, what is happening)
FILE_NAMES = {"onnx": "model.onnx", "pt2": "model.pt2", "bundle": "bundle"}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: where, how many bytes, and how closely it answers as the studio's
    model (the largest absolute difference on real test samples)."""

    run_id: int
    format: str
    path: Path
    bytes: int
    max_abs_diff: float

    def to_json(self) -> dict[str, Any]:
        """The `studio export --json` document (keys may be added, never renamed)."""
        return {
            "run_id": self.run_id,
            "format": self.format,
            "path": str(self.path),
            "bytes": self.bytes,
            "max_abs_diff": self.max_abs_diff,
        }


def default_path(run_id: int, fmt: str) -> Path:
    """Where an export goes when no path is given: exports_dir/run-ID/model.onnx, model.pt2
    or bundle/."""
    _check_format(fmt)
    return get_settings().exports_dir / f"run-{int(run_id)}" / FILE_NAMES[fmt]


def export_run(
    run_id: int,
    fmt: str,
    out: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressFn | None = None,
) -> ExportResult:
    """Export run `run_id`'s latest checkpoint as `fmt` ("onnx" | "pt2" | "bundle") to `out`
    (default: `default_path`), checked on real test samples; ExportError (or NotFoundError for
    an unknown run or one without a checkpoint) says what was wrong."""
    from core.export.bundle import BUNDLE_STEPS, write_bundle
    from core.export.onnx import export_onnx
    from core.export.parity import example_batch, parity_samples
    from core.export.program import capture
    from core.export.pt2 import export_pt2
    from core.runs.models import load_run_model
    from core.runs.reading import get_run, list_checkpoints

    _check_format(fmt)
    # loading, capturing, the format's own steps, done (done == total)
    report = _Steps(progress, total=3 if fmt != "bundle" else 2 + BUNDLE_STEPS)
    run = get_run(run_id)
    if run.is_active:
        raise ExportError(
            f"run {run.id} is still {run.status}; export it once it has finished "
            "(or stop it: its latest checkpoint is then exported)"
        )
    target = Path(out).expanduser() if out is not None else default_path(run.id, fmt)
    if out is not None and (target.exists() or target.is_symlink()):
        raise ExportError(f"{target} already exists; give a new path with -o, or delete it first")
    if not list_checkpoints(run.id):
        raise ExportError(
            f"run {run.id} ({run.status}) has no checkpoint to export: it ended before its "
            "first epoch end; train it again for at least one epoch"
        )
    report.step("loading the model from its checkpoint")
    model, dataset, run = load_run_model(run.id)
    samples = parity_samples(dataset)
    report.step("capturing the model with torch.export")
    program = capture(model, example_batch(samples))
    staging = _staging_path(target)
    try:
        if fmt == "onnx":
            report.step("writing the ONNX file and checking it with onnxruntime")
            diff = export_onnx(model, dataset.facts, staging, samples, program=program)
        elif fmt == "pt2":
            report.step("saving the program and checking it with torch.export.load")
            diff = export_pt2(model, dataset.facts, staging, samples, program=program)
        else:
            diff = write_bundle(
                staging,
                model=model,
                dataset=dataset,
                run=run,
                samples=samples,
                program=program,
                step=report.step,
            )
        _move_into_place(staging, target, replace=out is None)
    finally:
        _remove(staging)
    report.step("done")
    return ExportResult(
        run_id=run.id, format=fmt, path=target, bytes=_size(target), max_abs_diff=diff
    )


class _Steps:
    """Counts the steps of an export for a progress callback (a no-op without one)."""

    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def step(self, note: str) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total, note)
        self.done += 1


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _staging_path(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    # the suffix is kept: torch.export.load wants a name ending in .pt2
    # unique per call: two exports of one run (two tabs, two threads) never share a staging name
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.stem}.partial-{tag}{target.suffix}")


def _move_into_place(staging: Path, target: Path, *, replace: bool) -> None:
    if target.exists() or target.is_symlink():
        if not replace:  # appeared while exporting: still never overwritten
            raise ExportError(f"{target} appeared while exporting; nothing was overwritten")
        _remove(target)
    os.replace(staging, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size
