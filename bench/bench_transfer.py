"""Transfer learning, measured side by side in one run (offline data only).

1. Transfer vs from scratch, 3 seeds: a CNN is pretrained on `digits` (10 classes), then
   trained on a small image-folder dataset made from *other* digit images (150 of the 359
   images of the digits test split, which pretraining never sees; the other 209 are a held-out
   test) for another task: even vs odd. Three
   ways with the same spec, the same target set and the same step budget: from scratch,
   `--init-from` the pretrained run (everything but the new 2-class head loaded, all trained),
   and the same with the body frozen (only the head trains, on cached features).
2. The frozen-feature cache: time per epoch of a frozen resnet18 Backbone (weights "none": the
   timing does not depend on the weights) + Linear head on an image-folder dataset, trained
   through the loop as it is (the frozen body runs forward at every step) and on cached
   features (the body runs once per split).

Every run goes through the studio's own code (`train_run_foreground`, the worker's path; the
loop's `fit`) against a throwaway STUDIO_HOME. Run: .venv/bin/python bench/bench_transfer.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

SEEDS = (0, 1, 2)
TARGET_IMAGES = 150  # the small target set: about 108 train, 12 validation, 30 test images
TARGET_STEPS = 30  # the step budget of every target run (about 4 epochs of the small set)
BATCH = 16
LR = 3e-3  # the same for every arm; a head alone learns slowly at Adam's usual 1e-3


def body(frozen: bool) -> list[dict]:
    """The CNN's layers before its head; `frozen` marks every block with weights."""
    mark = {"frozen": True} if frozen else {}
    return [
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1, **mark},
        {"type": "ReLU"},
        {"type": "Conv2d", "out_channels": 32, "kernel_size": 3, "padding": 1, **mark},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 64, **mark},
        {"type": "ReLU"},
    ]


def cnn(frozen: bool = False) -> dict:
    return {"name": "digits-transfer", "layers": [*body(frozen), {"type": "Linear"}]}


def write_even_odd_folders(root: Path, target_size: int) -> tuple[str, str]:
    """The digits test split's images (never seen by pretraining) as PNGs in even/ and odd/:
    a small target set of `target_size` images, and every other one as a held-out set (a
    larger test than the target's own 20%). Returns both dataset names (1x8x8 images)."""
    from sklearn.datasets import load_digits

    from core.data import load_dataset

    source = load_digits()
    rows = load_dataset("digits").test.indices.tolist()
    rng = np.random.default_rng(0)
    rng.shuffle(rows)
    for part, chosen in (("target", rows[:target_size]), ("holdout", rows[target_size:])):
        for row in chosen:
            label = "even" if source.target[row] % 2 == 0 else "odd"
            folder = root / part / label
            folder.mkdir(parents=True, exist_ok=True)
            pixels = (source.images[row] * 255 / 16).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{row}.png")
    return (
        f"images:{root / 'target'}?size=8&channels=1",
        f"images:{root / 'holdout'}?size=8&channels=1",
    )


def holdout_accuracy(run_id: int, target: str, holdout: str) -> float:
    """The run's accuracy on every held-out image, normalized with the target's statistics."""
    import torch

    from core import runs
    from core.data import load_dataset

    model, data, _ = runs.load_run_model(run_id)
    held = load_dataset(holdout)
    x = torch.cat([held.train.x, held.val.x, held.test.x])
    y = torch.cat([held.train.y, held.val.y, held.test.y])
    raw = x * held.normalization.std + held.normalization.mean
    x = (raw - data.normalization.mean) / data.normalization.std
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def transfer_table(target: str, holdout: str) -> list[tuple[str, list[float], list[float]]]:
    from core import runs
    from core.train.transfer import init_origin

    budget = {"steps": TARGET_STEPS, "batch_size": BATCH, "lr": LR, "device": "cpu"}
    arms = ("from scratch", "transfer, all trained", "transfer, body frozen (cache)")
    scores: dict[str, tuple[list[float], list[float]]] = {arm: ([], []) for arm in arms}
    for seed in SEEDS:
        parent = runs.train_run_foreground(
            spec=cnn(), dataset="digits", config={"epochs": 10, "device": "cpu", "seed": seed}
        )
        lineage = {"parent_run_id": parent["run_id"], "origin": init_origin(parent["run_id"])}
        settings = {**budget, "seed": seed}
        for label, spec, extra in (
            (arms[0], cnn(), {}),
            (arms[1], cnn(), lineage),
            (arms[2], cnn(frozen=True), lineage),
        ):
            result = runs.train_run_foreground(spec=spec, dataset=target, config=settings, **extra)
            assert result["status"] == "completed", result["error"]
            scores[label][0].append(result["metrics"]["test_accuracy"])
            scores[label][1].append(holdout_accuracy(result["run_id"], target, holdout))
        print(f"  seed {seed}: pretrained on digits to {parent['metrics']['test_accuracy']:.1%}")
    return [(arm, *scores[arm]) for arm in arms]


def write_colour_folder(root: Path, per_class: int = 100) -> str:
    """Two classes of 32x32 RGB pictures (digits drawn in two colours on noise)."""
    from sklearn.datasets import load_digits

    source = load_digits()
    rng = np.random.default_rng(0)
    for label, colour in (("warm", (220, 90, 40)), ("cool", (40, 110, 220))):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(per_class):
            shape = np.kron(source.images[i] / 16, np.ones((4, 4)))[..., None]
            noise = rng.integers(0, 60, (32, 32, 3))
            pixels = np.clip(shape * np.array(colour) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="RGB").save(folder / f"{i}.png")
    return f"images:{root}?size=32&channels=3"


def cache_timing(dataset_name: str, epochs: int = 3) -> dict[str, float]:
    import torch

    from core.builder import build_model
    from core.data import load_dataset
    from core.train import TrainConfig, fit, seed_everything
    from core.train.feature_cache import with_feature_cache

    spec = {
        "name": "frozen-resnet18",
        "layers": [
            {
                "type": "Backbone",
                "arch": "resnet18",
                "weights": "none",
                "image_size": 64,
                "frozen": True,
            },
            {"type": "Linear"},
        ],
    }
    data = load_dataset(dataset_name)
    config = TrainConfig(epochs=epochs, batch_size=32, device="cpu", seed=0)
    seed_everything(0)
    model = build_model(spec, data.facts)
    started = time.perf_counter()
    plain = fit(model, data, config, checkpoint_every_s=1e9)
    plain_s = time.perf_counter() - started
    seed_everything(0)
    model = build_model(spec, data.facts)
    started = time.perf_counter()
    cached_model, cached_data, note = with_feature_cache(model, data, config)
    cached = fit(cached_model, cached_data, config, checkpoint_every_s=1e9)
    cached_s = time.perf_counter() - started
    assert plain.status == cached.status == "completed"
    del torch
    return {
        "images": len(data.train) + len(data.val) + len(data.test),
        "epoch_s_plain": plain_s / epochs,
        "cache_build_s": note["seconds"],
        "epoch_s_cached": (cached_s - note["seconds"]) / epochs,
        "total_plain_s": plain_s,
        "total_cached_s": cached_s,
        "epochs": epochs,
        "acc_plain": plain.metrics["test_accuracy"],
        "acc_cached": cached.metrics["test_accuracy"],
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        os.environ["STUDIO_HOME"] = home
        os.environ["STUDIO_DATABASE_URL"] = f"sqlite:///{home}/studio.db"
        target, holdout = write_even_odd_folders(Path(home) / "even-odd", TARGET_IMAGES)
        print(
            f"1. transfer: pretrained on digits (10 classes), target even/odd from "
            f"{TARGET_IMAGES} other digit images, {TARGET_STEPS} steps of {BATCH}, lr {LR:g}, "
            f"seeds {list(SEEDS)}"
        )
        table = transfer_table(target, holdout)
        print(f"\n{'start':32} {'target test (30 images)':26} {'held out (209 images)':26} means")
        for label, tests, held in table:
            shown = ", ".join(f"{v:.0%}" for v in tests)
            shown_held = ", ".join(f"{v:.1%}" for v in held)
            print(
                f"{label:32} {shown:26} {shown_held:26} "
                f"{statistics.mean(tests):.1%} / {statistics.mean(held):.1%}"
            )
        print("\n2. frozen-feature cache: frozen resnet18 (image_size 64) + Linear, CPU")
        timing = cache_timing(write_colour_folder(Path(home) / "colours"))
        print(f"  {timing['images']} images, {timing['epochs']} epochs")
        print(f"  epoch, body run at every step: {timing['epoch_s_plain']:.2f} s")
        print(f"  features cached once:          {timing['cache_build_s']:.2f} s")
        print(
            f"  epoch on cached features:      {timing['epoch_s_cached']:.3f} s "
            f"({timing['epoch_s_plain'] / max(timing['epoch_s_cached'], 1e-9):.0f}x faster)"
        )
        print(
            f"  whole run: {timing['total_plain_s']:.1f} s vs {timing['total_cached_s']:.1f} s "
            f"({timing['total_plain_s'] / timing['total_cached_s']:.1f}x); test accuracy "
            f"{timing['acc_plain']:.1%} vs {timing['acc_cached']:.1%}"
        )


if __name__ == "__main__":
    main()
