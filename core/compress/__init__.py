"""Compression: structured and unstructured pruning, int8, and the before/after table.

    report = compress_run(run_id, CompressOptions(prune=0.5, finetune_epochs=3))
    report.to_json()  # {"run_id", "parent_run_id", "before", "after", "attribution_agreement"}

The names below load on first use, so `studio` commands that never compress do not pay for
importing Torch-Pruning and onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CompressOptions": "core.compress.service",
    "CompressionReport": "core.compress.service",
    "compress_run": "core.compress.service",
    "compare_with_parent": "core.compress.service",
    "list_reports": "core.compress.service",
    "prune_structured": "core.compress.structured",
    "prune_unstructured": "core.compress.unstructured",
    "check_ratio": "core.compress.structured",
    "quantize_onnx": "core.compress.int8",
    "attribution_agreement": "core.compress.agreement",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'core.compress' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
