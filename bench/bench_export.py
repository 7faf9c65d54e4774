"""Export time per template, and onnxruntime vs PyTorch eager CPU latency at batch 1 and 64.

Each template is built fresh (latency does not depend on training) and exported the way
`studio export` does it (torch.export once, then the dynamo ONNX exporter, checked on real
samples). Latency is the median of repeats, the two runtimes interleaved call by call so a
busy machine slows both alike, with the same number of CPU threads each (--threads, default 1).
ratio = eager / onnxruntime: above 1 means the ONNX file is faster.

Run: .venv/bin/python bench/bench_export.py [--threads N] [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from core.builder import build_model
from core.export.onnx import export_onnx
from core.export.parity import example_batch, parity_samples
from core.export.program import capture
from core.facts import ModelFacts
from core.templates import list_templates

TEXT_LSTM = {
    "name": "text-lstm",
    "layers": [
        {"type": "Embedding", "embedding_dim": 32},
        {"type": "LSTM", "hidden_size": 64},
        {"type": "SequencePool", "mode": "last"},
        {"type": "Linear", "out_features": 2},
    ],
}
TEXT_FACTS = ModelFacts(input_shape=(32,), num_classes=2, vocab_size=2000, modality="text")
BATCHES = (1, 64)


def samples_for(dataset_name: str | None, spec: dict) -> tuple[ModelFacts, torch.Tensor, str]:
    """Real samples where the dataset is on this machine, else random ones of its shape."""
    from core.data import load_dataset
    from core.errors import DataError

    if dataset_name is None:
        ids = torch.randint(2, TEXT_FACTS.vocab_size, (64, *TEXT_FACTS.input_shape))
        return TEXT_FACTS, ids, "random token ids"
    try:
        dataset = load_dataset(dataset_name)
        return dataset.facts, parity_samples(dataset), "real"
    except DataError:  # cifar10 offline: the latency is the same on random pixels
        facts = ModelFacts(input_shape=tuple(spec["input_shape"]), num_classes=10, modality="image")
        return facts, torch.randn(64, *facts.input_shape), "random (dataset not on this machine)"


def ort_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def latency_ms(model, session, batch: torch.Tensor, repeats: int) -> tuple[float, float]:
    """Median milliseconds per call of eager PyTorch and onnxruntime, interleaved."""
    feed = {session.get_inputs()[0].name: batch.numpy()}
    eager, ort = [], []
    with torch.inference_mode():
        for _ in range(3):  # warm-up: allocators, onnxruntime's first-run planning
            model(batch), session.run(None, feed)
        for _ in range(repeats):
            start = time.perf_counter()
            model(batch)
            middle = time.perf_counter()
            session.run(None, feed)
            eager.append(middle - start)
            ort.append(time.perf_counter() - middle)
    return statistics.median(eager) * 1e3, statistics.median(ort) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=100, help="at batch 1; a quarter at 64")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = [(t.name, t.spec, t.dataset) for t in list_templates()] + [
        ("text-lstm", TEXT_LSTM, None)
    ]
    folder = Path(tempfile.mkdtemp(prefix="bench_export_"))

    # the exporter builds its operator table once per process (core.export.torchlib_cache)
    start = time.perf_counter()
    tiny = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    export_onnx(tiny, None, folder / "warm.onnx", torch.randn(4, 4))
    print(
        f"first export in this process (operator table built once): {time.perf_counter() - start:.1f} s"
    )
    print(
        f"threads: {args.threads} for both runtimes; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}\n"
    )

    header = (
        f"{'template':22} {'export s':>8} {'cpu s':>6} {'max diff':>9} | {'b1 eager':>8} {'b1 ort':>8} {'ratio':>6} | "
        f"{'b64 eager':>9} {'b64 ort':>8} {'ratio':>6} | samples"
    )
    print(header + "\n" + "-" * len(header))
    for name, spec, dataset_name in cases:
        facts, samples, origin = samples_for(dataset_name, spec)
        torch.manual_seed(0)
        model = build_model(spec, facts).eval()
        path = folder / f"{name}.onnx"
        start, cpu_start = time.perf_counter(), time.process_time()
        program = capture(model, example_batch(samples))
        diff = export_onnx(model, facts, path, samples, program=program)
        export_s, export_cpu = time.perf_counter() - start, time.process_time() - cpu_start
        session = ort_session(path, args.threads)
        row = []
        for batch_size in BATCHES:
            batch = samples[:batch_size]
            repeats = args.repeats if batch_size == 1 else max(5, args.repeats // 4)
            eager, ort = latency_ms(model, session, batch, repeats)
            row.append((eager, ort, eager / ort))
        (e1, o1, r1), (e64, o64, r64) = row
        print(
            f"{name:22} {export_s:8.1f} {export_cpu:6.1f} {diff:9.2g} | {e1:8.3f} {o1:8.3f} {r1:6.2f} | "
            f"{e64:9.3f} {o64:8.3f} {r64:6.2f} | {origin}",
            flush=True,
        )
    print(
        "\nexport: wall and CPU seconds (capture + ONNX + parity check); latency in ms per call "
        "(median); ratio = eager / onnxruntime (above 1: ONNX faster)"
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
