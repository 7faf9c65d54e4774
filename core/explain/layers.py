"""Finding the layers an explanation needs: the last convolution, the embedding, attention."""

from __future__ import annotations

import torch
from torch import Tensor, nn

CONV_TYPES = (nn.Conv1d, nn.Conv2d)


def execution_order(model: nn.Module, example: Tensor) -> list[nn.Module]:
    """Leaf modules in the order one forward pass calls them (graphs need not follow
    registration order, e.g. a residual branch registered after the layer that uses it)."""
    order: list[nn.Module] = []
    seen: set[int] = set()

    def record(module: nn.Module, _inputs: object, _output: object) -> None:
        if id(module) not in seen:
            seen.add(id(module))
            order.append(module)

    handles = [m.register_forward_hook(record) for m in model.modules() if m is not model]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return order


def find_last_conv(model: nn.Module, example: Tensor | None = None) -> nn.Module | None:
    """The last Conv1d/Conv2d: in registration order, which is execution order for a
    SpecModel (layers are added in the order its graph runs); pass `example` to follow one
    forward pass instead, for models registered in another order."""
    modules = execution_order(model, example) if example is not None else list(model.modules())
    convs = [m for m in modules if isinstance(m, CONV_TYPES)]
    return convs[-1] if convs else None


def find_embedding(model: nn.Module) -> nn.Embedding | None:
    """The first Embedding: the layer text explanations attribute to."""
    return next((m for m in model.modules() if isinstance(m, nn.Embedding)), None)


def pad_token_id(embedding: nn.Embedding, vocabulary: list[str] | None = None) -> int:
    """The id that means "no word": the embedding's padding_idx, else `<pad>`, else 0."""
    if embedding.padding_idx is not None:
        return int(embedding.padding_idx)
    if vocabulary and "<pad>" in vocabulary:
        return vocabulary.index("<pad>")
    return 0


def find_attention_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that compute attention: studio wrappers (`last_attention`) or MultiheadAttention.

    A MultiheadAttention inside a studio wrapper is not listed twice.
    """
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        inside_wrapper = any(
            name.startswith(f"{outer}.") for outer, m in found if hasattr(m, "last_attention")
        )
        if inside_wrapper:
            continue
        if hasattr(module, "last_attention") or isinstance(module, nn.MultiheadAttention):
            found.append((name or type(module).__name__, module))
    return found
