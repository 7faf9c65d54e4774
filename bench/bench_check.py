"""How long `studio check` takes on a large model: a ResNet-34-style spec (~21.8M parameters,
224x224 input, 1000 classes) traced on the meta device, side by side with really building it.

Run: .venv/bin/python bench/bench_check.py
"""

from __future__ import annotations

import statistics
import time

import torch

from core.builder import build_model, trace


def resnet34_spec() -> dict:
    """ResNet-34 written as a studio spec: basic blocks with Add shortcuts (1x1 when shapes
    change)."""
    layers: list[dict] = [
        {
            "type": "Conv2d",
            "out_channels": 64,
            "kernel_size": 7,
            "stride": 2,
            "padding": 3,
            "bias": False,
        },
        {"type": "BatchNorm2d"},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "id": "stem"},
    ]
    previous, channels = "stem", 64
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)], start=1):
        for block in range(1, blocks + 1):
            name = f"s{stage}b{block}"
            stride = 2 if block == 1 and stage > 1 else 1
            layers += [
                {
                    "type": "Conv2d",
                    "out_channels": width,
                    "kernel_size": 3,
                    "stride": stride,
                    "padding": 1,
                    "bias": False,
                    "inputs": [previous],
                },
                {"type": "BatchNorm2d"},
                {"type": "ReLU"},
                {
                    "type": "Conv2d",
                    "out_channels": width,
                    "kernel_size": 3,
                    "padding": 1,
                    "bias": False,
                },
                {"type": "BatchNorm2d", "id": f"{name}_main"},
            ]
            shortcut = previous
            if stride != 1 or width != channels:
                layers += [
                    {
                        "type": "Conv2d",
                        "out_channels": width,
                        "kernel_size": 1,
                        "stride": stride,
                        "bias": False,
                        "inputs": [previous],
                    },
                    {"type": "BatchNorm2d", "id": f"{name}_short"},
                ]
                shortcut = f"{name}_short"
            layers += [
                {"type": "Add", "inputs": [shortcut, f"{name}_main"]},
                {"type": "ReLU", "id": name},
            ]
            previous, channels = name, width
    layers += [
        {"type": "AdaptiveAvgPool2d", "output_size": 1},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 1000},
    ]
    return {"name": "resnet34", "input_shape": [3, 224, 224], "layers": layers}


def timed(function, repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    spec = resnet34_spec()
    cold, traced = timed(lambda: trace(spec), 1)
    assert traced.ok, traced.error
    warm, traced = timed(lambda: trace(spec), 5)
    build, model = timed(lambda: build_model(spec), 3)
    model.eval()
    with torch.no_grad():
        forward, _ = timed(lambda: model(torch.randn(1, 3, 224, 224)), 3)
    print(
        f"model: {len(spec['layers'])} layers, {traced.params:,} parameters, "
        f"{traced.flops / 1e9:.2f} GFLOPs per 224x224 image"
    )
    print(
        f"studio check (trace on meta), first call in a process: {cold * 1000:8.1f} ms "
        "(includes PyTorch's one-time meta/flop-counter warm-up)"
    )
    print(f"studio check (trace on meta), warm:                    {warm * 1000:8.1f} ms")
    print(f"building it for real (weights allocated):              {build * 1000:8.1f} ms")
    print(f"one real forward pass, batch 1:                         {forward * 1000:8.1f} ms")
    print(
        f"ratio: a warm check is {build / warm:.1f}x faster than building the model "
        f"and {forward / warm:.1f}x faster than one forward pass"
    )


if __name__ == "__main__":
    main()
