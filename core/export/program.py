"""torch.export of a studio model: one ExportedProgram with a dynamic batch dimension.

Both formats start here: the pt2 file is this program saved, the ONNX file is this program
translated, so a model is traced once per export.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from core.errors import ExportError

MAX_BATCH = 1 << 20  # the exported batch dimension's upper bound (a symbol, not an allocation)


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """Keep the exporters' chatter ("[torch.onnx] Obtain model graph ...", deprecation
    warnings from inside PyTorch) off stdout, which carries only a command's result."""
    chatter = io.StringIO()
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(chatter),
    ):
        warnings.simplefilter("ignore")
        yield chatter


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (dropout off, batch norm on its running statistics) for the
    duration; its training flag is given back afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def capture(model: nn.Module, example: torch.Tensor) -> torch.export.ExportedProgram:
    """The model (in eval mode) as an ExportedProgram whose first dimension is a dynamic
    batch; ExportError saying why when PyTorch cannot capture it (a shape that depends on the
    values of the input, Python control flow on tensor values)."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    try:
        with quiet(), eval_mode(model):
            return torch.export.export(model, (example,), dynamic_shapes=({0: batch},))
    except Exception as error:  # torch raises many kinds; the person needs the first line
        raise ExportError(
            f"torch.export cannot capture this model: {_first_line(error)}"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    if "data-dependent" in text or "GuardOnDataDependentSymNode" in type(error).__name__:
        return (
            "a layer's output shape or path depends on the values of its input, not only on "
            "its shape; such a model can run in the studio but not as a fixed graph"
        )
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {line[:300]}" if line else type(error).__name__
