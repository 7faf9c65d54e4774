"""Export a trained run: an ONNX file, a torch.export (pt2) file, or a bundle folder to serve.

Every export is checked before it is handed over: the file is loaded back (onnxruntime,
torch.export.load) and run on real test samples of the run's dataset at batch 1 and a larger
batch; the largest absolute difference from the studio's model is reported and must stay
below 1e-4.

    result = export_run(7, "bundle")     # ExportResult(run_id, format, path, bytes, max_abs_diff)
    export_onnx(model, facts, path, samples) -> max_abs_diff

Names load on first use, so `studio` commands that never export do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

FORMATS = ("onnx", "pt2", "bundle")

_LAZY = {
    "ExportResult": "core.export.run_export",
    "default_path": "core.export.run_export",
    "export_run": "core.export.run_export",
    "export_onnx": "core.export.onnx",
    "export_pt2": "core.export.pt2",
    "parity_samples": "core.export.parity",
    "TOLERANCE": "core.export.parity",
}

__all__ = ["FORMATS", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'core.export' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
