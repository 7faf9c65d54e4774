"""The before/after figures of a compression: size, work, speed and accuracy of one model.

Every model is measured the same way: parameters and non-zero parameters from its tensors,
FLOPs per sample from the studio's own counter (the spec's trace), bytes of its file on disk,
CPU latency at batch 1 and 64, and accuracy on the dataset's test split. Latencies of the
models being compared are measured side by side (interleaved, median of repeats), so a machine
that is busier for a moment slows both alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

LATENCY_BATCHES = (1, 64)
# latency on one CPU thread: the figure then does not depend on how busy the other cores are
# (a shared machine), and compares kernels rather than thread pools
LATENCY_THREADS = 1
FIELDS = ("params", "nonzero_params", "flops", "bytes", "latency_ms", "test_accuracy")
# a predictor takes a float32/int64 numpy batch and returns the logits as a numpy array
Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class Figures:
    """One column of the before/after table (`--json` "before" / "after")."""

    params: int
    nonzero_params: int
    flops: int  # per sample, forward pass
    bytes: int  # the model's file on disk
    latency_ms: dict[str, float]  # {"batch_1": ms, "batch_64": ms}, median of repeats
    test_accuracy: float | None
    runtime: str = "torch"  # "torch" (the CPU model) or "onnxruntime" (an ONNX file)
    file: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "nonzero_params": self.nonzero_params,
            "flops": self.flops,
            "bytes": self.bytes,
            "latency_ms": dict(self.latency_ms),
            "test_accuracy": self.test_accuracy,
            "runtime": self.runtime,
            "file": self.file,
        }


def count_params(model: nn.Module) -> tuple[int, int]:
    """(parameters, non-zero parameters) of a torch model."""
    total = sum(p.numel() for p in model.parameters())
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    return total, nonzero


def count_onnx_params(path: Path) -> tuple[int, int]:
    """(numbers, non-zero numbers) stored in an ONNX file's weights (int8 ones included)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    arrays = [numpy_helper.to_array(t) for t in model.graph.initializer]
    weights = [a for a in arrays if a.size > 1]  # scales and zero points are single numbers
    return sum(a.size for a in weights), sum(int(np.count_nonzero(a)) for a in weights)


def flops_per_sample(spec: dict[str, Any], facts: Any) -> int:
    """The studio's FLOP count of one forward pass (the same number `studio check` shows)."""
    from core.builder import check_model

    return check_model(spec, facts, finished=True).flops


def save_weights(model: nn.Module, path: Path) -> int:
    """Write the model's state dict as safetensors; its size in bytes."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return path.stat().st_size


def torch_predictor(model: nn.Module) -> Predictor:
    """A CPU predictor for a torch model in eval mode."""
    model = model.eval().cpu()

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return predict


def onnx_predictor(path: Path) -> Predictor:
    """A CPU predictor for an ONNX file, through onnxruntime."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # its notes on unused initializers are not news
    options.intra_op_num_threads = LATENCY_THREADS
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(batch: np.ndarray) -> np.ndarray:
        return session.run(None, {name: batch})[0]

    return predict


def test_accuracy(predict: Predictor, data: Any, *, batch_size: int = 512) -> float | None:
    """Share of the test split the predictor classifies right (None for regression)."""
    if data.task != "classification" or len(data.test) == 0:
        return None
    x, y = data.test.x.cpu().numpy(), data.test.y.cpu().numpy()
    hits = 0
    for start in range(0, len(y), batch_size):
        logits = predict(x[start : start + batch_size])
        hits += int((logits.argmax(axis=-1) == y[start : start + batch_size]).sum())
    return hits / len(y)


def latency_inputs(data: Any, batches: tuple[int, ...] = LATENCY_BATCHES) -> dict[int, np.ndarray]:
    """Real test samples at each batch size (repeated when the split is smaller)."""
    x = data.test.x if len(data.test) else data.train.x
    x = x.cpu().numpy()
    return {b: np.ascontiguousarray(np.resize(x, (b, *x.shape[1:]))) for b in batches}


def side_by_side_latency(
    predictors: dict[str, Predictor],
    inputs: dict[int, np.ndarray],
    *,
    repeats: int = 30,
    warmup: int = 3,
) -> dict[str, dict[str, float]]:
    """Median milliseconds per call of each predictor at each batch size; the predictors take
    turns call by call, so both see the same machine."""
    times: dict[str, dict[int, list[float]]] = {k: {b: [] for b in inputs} for k in predictors}
    threads = torch.get_num_threads()
    torch.set_num_threads(LATENCY_THREADS)
    try:
        _take_turns(predictors, inputs, times, repeats=repeats, warmup=warmup)
    finally:
        torch.set_num_threads(threads)
    return {
        key: {f"batch_{b}": statistics.median(samples) for b, samples in by_batch.items()}
        for key, by_batch in times.items()
    }


def _take_turns(
    predictors: dict[str, Predictor],
    inputs: dict[int, np.ndarray],
    times: dict[str, dict[int, list[float]]],
    *,
    repeats: int,
    warmup: int,
) -> None:
    for batch, x in inputs.items():
        for _ in range(warmup):
            for predict in predictors.values():
                predict(x)
        for _ in range(repeats):
            for key, predict in predictors.items():
                start = time.perf_counter()
                predict(x)
                times[key][batch].append((time.perf_counter() - start) * 1000)
