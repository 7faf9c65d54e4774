"""Per-explanation latency on the CPU, per method, against the passes it is made of.

For the digits CNN and the CIFAR-10 tutorial CNN (the studio's templates), one sample:
- reference: one forward + backward to the input, and fifty of them one after another;
- each method through `compute_attributions` (the Captum call alone), and `explain()` as the
  CLI and the page call it: without and with the model-randomization sanity check (which runs
  the method twice more on re-initialized copies).
Goals: Saliency and Grad-CAM <= 2x one forward + backward; Integrated Gradients with 50 steps
<= 1.2x fifty forward + backward (its 50 steps go through the model as one batch).

    .venv/bin/python bench/bench_explain.py [--repeats 30] [--threads N]

Untrained weights: latency does not depend on what the weights are. The goal ratios are
medians of back-to-back pairs (reference, method), which a busy machine distorts less than
separate medians; still, run it on a quiet machine, and on a shared two-core box prefer
--threads 1 (two threads beside other processes run tens of times slower).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.explain import METHODS, compute_attributions, explain  # noqa: E402

MODELS = {
    "digits CNN": ("digits-cnn", (1, 8, 8)),
    "CIFAR-10 CNN": ("cifar10-tutorial-cnn", (3, 32, 32)),
}
GOALS = {  # method -> (reference, allowed ratio)
    "saliency": ("1 fwd+bwd", 2.0),
    "grad_cam": ("1 fwd+bwd", 2.0),
    "integrated_gradients": ("50 fwd+bwd", 1.2),
}


def build(template: str, shape: tuple[int, ...]) -> nn.Module:
    """The template through the studio's builder; a hand-written twin where it is absent."""
    try:
        from core.builder import build_model
        from core.facts import ModelFacts
        from core.templates import get_template

        return build_model(get_template(template).spec, ModelFacts(num_classes=10)).eval()
    except ImportError:
        channels, side = shape[0], shape[1]
        return nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * (side // 2) ** 2, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        ).eval()


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm up: first calls allocate and build hooks
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_ratio(reference: Callable[[], object], fn: Callable[[], object], repeats: int) -> float:
    """Median of time(fn) / time(reference), each pair timed back to back, so a busy machine
    slows both sides of every ratio alike."""
    reference()
    fn()
    ratios = []
    for _ in range(repeats):
        start = time.perf_counter()
        reference()
        middle = time.perf_counter()
        fn()
        ratios.append((time.perf_counter() - middle) / (middle - start))
    return statistics.median(ratios)


def forward_backward(model: nn.Module, x: torch.Tensor, target: int) -> None:
    sample = x.detach().requires_grad_()
    model(sample)[0, target].backward()


def bench_model(title: str, model: nn.Module, x: torch.Tensor, repeats: int) -> list[str]:
    """Print one table; return the goals it missed."""
    target = int(model(x).argmax())
    targets = torch.tensor([target])
    baseline = torch.zeros_like(x)
    one = median_seconds(lambda: forward_backward(model, x, target), repeats)
    fifty = median_seconds(
        lambda: [forward_backward(model, x, target) for _ in range(50)], max(3, repeats // 5)
    )
    print(
        f"\n{title} {tuple(x.shape[1:])}: 1 fwd+bwd {one * 1e3:.3f} ms, 50 fwd+bwd {fifty * 1e3:.2f} ms"
    )
    print(
        f"{'method':22s} {'captum ms':>10s} {'x 1 f+b':>8s} {'x 50 f+b':>9s} "
        f"{'explain ms':>11s} {'+ sanity ms':>12s}  goal (paired ratio)"
    )
    missed = []
    for method in METHODS:
        alone = median_seconds(
            lambda method=method: compute_attributions(
                model, x, method=method, targets=targets, baselines=baseline
            ),
            repeats,
        )
        plain = median_seconds(
            lambda method=method: explain(model, x[0], method=method, sanity_check=False),
            max(3, repeats // 3),
        )
        checked = median_seconds(
            lambda method=method: explain(model, x[0], method=method), max(3, repeats // 3)
        )
        verdict = ""
        if method in GOALS:
            reference, allowed = GOALS[method]
            passes = 1 if reference == "1 fwd+bwd" else 50
            ratio = paired_ratio(
                lambda passes=passes: [forward_backward(model, x, target) for _ in range(passes)],
                lambda method=method: compute_attributions(
                    model, x, method=method, targets=targets, baselines=baseline
                ),
                repeats if passes == 1 else max(5, repeats // 3),
            )
            verdict = (
                f"{ratio:.2f}x {reference} (<= {allowed}x) {'ok' if ratio <= allowed else 'MISSED'}"
            )
            if ratio > allowed:
                missed.append(f"{title} {method}: {verdict}")
        print(
            f"{method:22s} {alone * 1e3:10.3f} {alone / one:8.2f} {alone / fifty:9.3f} "
            f"{plain * 1e3:11.2f} {checked * 1e3:12.2f}  {verdict}"
        )
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU, median of {args.repeats}"
    )
    missed = []
    for title, (template, shape) in MODELS.items():
        torch.manual_seed(0)
        missed += bench_model(title, build(template, shape), torch.randn(1, *shape), args.repeats)
    print("\nall goals met" if not missed else "\ngoals missed:\n  " + "\n  ".join(missed))


if __name__ == "__main__":
    main()
