"""ONNX export: torch.onnx (dynamo) with a dynamic batch dimension, checked with onnxruntime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from core.errors import ExportError
from core.export import torchlib_cache
from core.export.parity import example_batch, max_abs_diff
from core.export.program import capture, eval_mode, quiet

if TYPE_CHECKING:
    from core.facts import ModelFacts

INPUT_NAME = "input"  # (batch, *sample_shape): float32 measurements or int64 token ids
OUTPUT_NAME = "scores"  # (batch, classes): the model's raw scores (logits)


def export_onnx(
    model: nn.Module,
    facts: ModelFacts | None,
    path: str | os.PathLike[str],
    samples: torch.Tensor,
    *,
    program: torch.export.ExportedProgram | None = None,
) -> float:
    """Write `model` to `path` as ONNX with a dynamic batch dimension, then run the file with
    onnxruntime on `samples` (real model inputs) at batch 1 and at batch len(samples); returns
    the largest absolute difference from the model's own outputs and raises ExportError when
    it is 1e-4 or more. `program`: an ExportedProgram already captured from this model.
    `facts` (what the model reads) checks the samples' shape and dtype when given."""
    path = Path(path)
    samples = _checked_samples(samples, facts)
    with eval_mode(model):
        program = program or capture(model, example_batch(samples))
        torchlib_cache.install()
        try:
            with quiet():
                torch.onnx.export(
                    program,
                    (example_batch(samples),),
                    str(path),
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    dynamo=True,
                    external_data=False,  # one self-contained file (our models are small)
                    optimize=True,
                )
        except Exception as error:
            raise ExportError(f"the ONNX exporter failed: {_short(error)}") from error
        session = onnx_session(path)
        return max_abs_diff(
            model, lambda batch: run_session(session, batch), samples, what="ONNX file"
        )


def onnx_session(path: str | os.PathLike[str]):
    """An onnxruntime CPU session for the file (one thread per call is onnxruntime's choice)."""
    import onnxruntime

    try:
        return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as error:
        raise ExportError(f"onnxruntime cannot load {path}: {_short(error)}") from error


def run_session(session, batch: torch.Tensor) -> np.ndarray:
    """The ONNX model's outputs for a batch of model inputs."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: batch.cpu().numpy()})[0]


def _checked_samples(samples: torch.Tensor, facts: ModelFacts | None) -> torch.Tensor:
    if facts is None:
        return samples.cpu()
    if facts.input_shape is not None and tuple(samples.shape[1:]) != tuple(facts.input_shape):
        raise ExportError(
            f"the samples are shaped {list(samples.shape[1:])}; the model reads "
            f"{list(facts.input_shape)}"
        )
    return samples.to(facts.input_dtype).cpu()


def _short(error: BaseException) -> str:
    line = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "")
    return f"{type(error).__name__}: {line[:300]}" if line else type(error).__name__
