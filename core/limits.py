"""Limits that keep a spec (a file, a shared `?draft=` link, a saved version) from eating the
server: its size, nesting and number of layers, checked before anything is parsed further or
built, and the model's estimated size (parameters, one sample's activations), checked layer by
layer during the meta trace, before any weight exists. Each refusal gives the number found, the
limit and the setting that changes it (`core.config.Settings`, STUDIO_MAX_*).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.config import Settings, get_settings
from core.errors import SpecError
from core.layers.registry import LayerProblem

GB = 1024**3


def too_large(limit: int) -> str:
    return (
        f"larger than {limit:,} bytes, the most a spec may take (STUDIO_MAX_SPEC_KB="
        f"{limit // 1024}); real specs take a few KB"
    )


def check_spec_limits(spec: Any, settings: Settings | None = None) -> None:
    """SpecError when a parsed document nests deeper than `max_spec_depth` or has more than
    `max_spec_layers` layers (the message gives the number and the limit)."""
    settings = settings or get_settings()
    depth = document_depth(spec)
    if depth > settings.max_spec_depth:
        raise SpecError(too_deep(depth, settings))
    layers = spec.get("layers") if isinstance(spec, dict) else None
    if isinstance(layers, list) and len(layers) > settings.max_spec_layers:
        raise SpecError(
            f"the spec has {len(layers):,} layers; at most {settings.max_spec_layers:,} are "
            "allowed (STUDIO_MAX_SPEC_LAYERS)"
        )


def too_deep(depth: int, settings: Settings) -> str:
    return (
        f"lists and objects nested {depth:,} levels deep; a spec may nest at most "
        f"{settings.max_spec_depth} (STUDIO_MAX_SPEC_DEPTH) and needs about 5"
    )


def document_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed document: a scalar is 0, `[]` is 1,
    `{"layers": [{}]}` is 3. Level by level, without recursion."""
    depth, level = 0, [value]
    while True:
        containers = [v for v in level if isinstance(v, dict | list | tuple)]
        if not containers:
            return depth
        depth += 1
        level = [c for v in containers for c in (v.values() if isinstance(v, dict) else v)]


def text_depth(text: str | bytes) -> int:
    """Nesting depth of JSON text, counted on the brackets outside strings (for text too deep
    for `json` to parse)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", text).encode("ascii", "ignore")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64)
    steps -= np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max()) if steps.size else 0


@dataclass
class SizeBudget:
    """The estimated size of a model being traced: parameters and one sample's activations
    (every layer's output kept for the backward pass), each against its limit."""

    max_params: int
    max_activation_bytes: int
    params: int = 0
    activation_bytes: int = 0

    @classmethod
    def from_settings(cls, input_bytes: int = 0, settings: Settings | None = None) -> SizeBudget:
        settings = settings or get_settings()
        return cls(settings.max_params, settings.max_activation_bytes, 0, input_bytes)

    def add(self, params: int, output_bytes: int) -> None:
        """Count one traced layer; LayerProblem when the model has grown past a limit."""
        self.params += params
        self.activation_bytes += output_bytes
        if self.params > self.max_params:
            raise LayerProblem(
                f"the model reaches {self.params:,} parameters here ({_size(self.params * 4)} "
                f"of float32 weights); the limit is {self.max_params:,} (STUDIO_MAX_PARAMS): "
                "use fewer out_features, channels or hidden units"
            )
        if self.activation_bytes > self.max_activation_bytes:
            raise LayerProblem(
                f"one sample's layer outputs reach {_size(self.activation_bytes)} here; the "
                f"limit is {_size(self.max_activation_bytes)} (STUDIO_MAX_ACTIVATION_MB="
                f"{self.max_activation_bytes // 1024**2}): use a smaller input, fewer channels, "
                "or pool earlier"
            )


def _size(size: int) -> str:
    for unit, scale in (("TB", 1024**4), ("GB", GB), ("MB", 1024**2)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}"
    return f"{size:,} bytes"
