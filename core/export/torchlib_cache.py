"""Build the ONNX exporter's operator table once per process instead of once per export.

`torch.onnx.export(dynamo=True)` rebuilds its table of ATen -> ONNX functions on every call by
parsing onnxscript's sources (about 4 s each time, more than exporting a small model). The table
depends only on the opset, so the first one built is kept and every later export gets a copy
(a copy, because a custom translation table is registered into the object it is given). This
wraps a private PyTorch function: where it is missing, exports simply keep their old speed.
"""

from __future__ import annotations

import copy
import threading

_lock = threading.Lock()
_built: dict[tuple[type, int], object] = {}


def install() -> bool:
    """Make the exporter reuse its operator table; True when the cache is in place."""
    try:
        from torch.onnx._internal.exporter import _registration
    except ImportError:
        return False
    registry_class = getattr(_registration, "ONNXRegistry", None)
    original = getattr(registry_class, "from_torchlib", None)
    if original is None:
        return False
    if getattr(original, "_studio_cached", False):
        return True
    build = original.__func__

    def from_torchlib(cls, opset_version=_registration._constants.TORCHLIB_OPSET):
        with _lock:
            key = (cls, opset_version)
            if key not in _built:
                _built[key] = build(cls, opset_version)
            registry = copy.copy(_built[key])
        registry.functions = {op: list(metas) for op, metas in registry.functions.items()}
        return registry

    from_torchlib._studio_cached = True  # type: ignore[attr-defined]
    registry_class.from_torchlib = classmethod(from_torchlib)
    return True
