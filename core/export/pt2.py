"""torch.export (pt2) export: the ExportedProgram saved with torch.export.save, then loaded
back with torch.export.load and checked like the ONNX file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from core.errors import ExportError
from core.export.onnx import _checked_samples, _short
from core.export.parity import example_batch, max_abs_diff
from core.export.program import capture, eval_mode, quiet

if TYPE_CHECKING:
    from core.facts import ModelFacts


def export_pt2(
    model: nn.Module,
    facts: ModelFacts | None,
    path: str | os.PathLike[str],
    samples: torch.Tensor,
    *,
    program: torch.export.ExportedProgram | None = None,
) -> float:
    """Write `model` to `path` as a torch.export program (dynamic batch dimension), load the
    file back and compare it with the model on `samples` at batch 1 and len(samples); returns
    the largest absolute difference, ExportError when it is 1e-4 or more."""
    path = Path(path)
    samples = _checked_samples(samples, facts)
    with eval_mode(model):
        program = program or capture(model, example_batch(samples))
        try:
            with quiet():
                torch.export.save(program, str(path))
                loaded = torch.export.load(str(path)).module()
        except Exception as error:
            raise ExportError(
                f"the torch.export file cannot be saved or loaded: {_short(error)}"
            ) from error

        def run_loaded(batch: torch.Tensor):
            with torch.no_grad():
                return loaded(batch).float().numpy()

        return max_abs_diff(model, run_loaded, samples, what="torch.export file")
