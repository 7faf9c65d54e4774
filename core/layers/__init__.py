"""The layer registry: `LAYERS[type]` -> family, description, parameter schema and builder.

`from core.layers import LAYERS, get_layer`. Importing this package registers every family.
"""

from core.layers import attention, cnn, common, rnn  # noqa: F401  (registration)

# isort: split
from core.layers import backbone  # noqa: F401  (registration; after the CNN family)
from core.layers.registry import (
    FAMILIES,
    KINDS,
    LAYERS,
    Construct,
    LayerContext,
    LayerProblem,
    LayerType,
    ParamSpec,
    get_layer,
    register,
)

__all__ = [
    "FAMILIES",
    "KINDS",
    "LAYERS",
    "Construct",
    "LayerContext",
    "LayerProblem",
    "LayerType",
    "ParamSpec",
    "get_layer",
    "layers_by_family",
    "register",
]


def layers_by_family() -> dict[str, list[LayerType]]:
    """Layer types grouped by family in FAMILIES order, for palettes and docs."""
    groups: dict[str, list[LayerType]] = {family: [] for family in FAMILIES}
    for layer in LAYERS.values():
        groups[layer.family].append(layer)
    return groups
