"""The training loop's numbers, measured side by side in one run.

1. Overhead: the studio's `fit()` (metrics written to a real SQLite database in batches, a
   checkpoint at every epoch end) against a hand-written PyTorch loop on the same model, data,
   batch size, optimizer and steps. Goal: studio throughput >= 0.95x the hand loop.
2. Against the textbook loop (DataLoader over a TensorDataset, batch size 4, num_workers 2,
   SGD lr 0.001 momentum 0.9, as in PyTorch's CIFAR-10 tutorial): the textbook loop trains for
   2 epochs; the studio's default settings then train until they reach the textbook's final
   test accuracy. Goal: >= 5x faster, on digits and mnist1d.

    .venv/bin/python bench/bench_loop.py [--repeats 3] [--overhead-epochs 5] [--quick]

Run it on a quiet machine: other processes on the same cores distort every ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.train import Callback, MetricRecord, TrainConfig, fit, seed_everything  # noqa: E402
from core.train.checkpoint import save_checkpoint  # noqa: E402
from core.train.devices import device_label, resolve_device  # noqa: E402

TEMPLATES = {"digits": "digits-cnn", "mnist1d": "mnist1d-cnn"}


# ---- data and models ----------------------------------------------------------------------------


def load(name: str):
    from core.data import load_dataset

    return load_dataset(name)


def model_factory(dataset_name: str, dataset) -> Callable[[int], nn.Module]:
    """A function seed -> a freshly initialized model: the dataset's template when it exists."""
    try:
        from core.builder import build_model
        from core.templates import get_template

        spec = get_template(TEMPLATES[dataset_name]).spec

        def build(seed: int) -> nn.Module:
            seed_everything(seed)
            return build_model(spec, dataset.facts)

        build(0)
        return build
    except Exception as error:  # the builder or templates are not there yet
        print(f"(templates unavailable, using an inline CNN: {error})", file=sys.stderr)
        shape = tuple(dataset.train.x.shape[1:])
        conv, pool = (nn.Conv2d, nn.MaxPool2d) if len(shape) == 3 else (nn.Conv1d, nn.MaxPool1d)

        def build(seed: int) -> nn.Module:
            seed_everything(seed)
            body = nn.Sequential(
                conv(shape[0], 16, 3, padding=1), nn.ReLU(), conv(16, 32, 3, padding=1), nn.ReLU(),
                pool(2), nn.Flatten(),
            )  # fmt: skip
            features = body(torch.zeros(1, *shape)).shape[1]
            return nn.Sequential(body, nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 10))

        return build


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- 1. overhead: studio fit() vs a hand-written loop --------------------------------------------


def hand_loop(
    model: nn.Module, dataset, *, epochs: int, batch_size: int, device, fused: bool = False
) -> float:
    """The loop a careful engineer writes by hand: tensors on the device, batches by indexing,
    Adam, validation accuracy each epoch, test accuracy at the end. Returns wall seconds."""
    started = time.perf_counter()
    model.to(device)
    x, y = dataset.train.x.to(device), dataset.train.y.to(device)
    val_x, val_y = dataset.val.x.to(device), dataset.val.y.to(device)
    test_x, test_y = dataset.test.x.to(device), dataset.test.y.to(device)
    amp = (
        (lambda: torch.autocast("cuda", dtype=torch.bfloat16))
        if device.type == "cuda"
        else nullcontext
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **({"fused": True} if fused else {}))
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x)).to(device)
        for start in range(0, len(x), batch_size):
            index = order[start : start + batch_size]
            with amp():
                loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.inference_mode(), amp():
            val_accuracy = (model(val_x).argmax(1) == val_y).float().mean().item()
    with torch.inference_mode(), amp():
        test_accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
    synchronize(device)
    assert 0 <= val_accuracy <= 1 and 0 <= test_accuracy <= 1
    return time.perf_counter() - started


class SqliteRecorder(Callback):
    """Fallback recorder: metrics to a real SQLite file in one transaction per batch, and a
    checkpoint file per epoch (used when core.worker's RunRecorder is not available)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = sqlite3.connect(folder / "metrics.db")
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS metrics (name TEXT, step INT, epoch INT, value REAL, "
            "time REAL, UNIQUE (name, step))"
        )

    def on_metrics(self, records: list[MetricRecord]) -> None:
        now = time.time()
        with self.db:
            self.db.executemany(
                "INSERT INTO metrics VALUES (?, ?, ?, ?, ?)",
                [(r.name, r.step, r.epoch, r.value, now) for r in records],
            )

    def on_checkpoint(self, state, *, epoch, step, metrics) -> None:
        save_checkpoint(self.folder / f"epoch-{epoch:04d}.pt", state)


def studio_recorder(folder: Path, dataset_name: str, config: TrainConfig) -> tuple[Callback, str]:
    """The worker's own RunRecorder on a fresh SQLite database when core.worker exists."""
    os.environ["STUDIO_HOME"] = str(folder)
    os.environ["STUDIO_DATABASE_URL"] = f"sqlite:///{folder / 'studio.db'}"
    try:
        from core import worker
        from core.store import db
        from core.store import repository as repo
        from core.templates import get_template

        worker_id = worker.new_worker_id("bench")
        db.call(
            repo.register_worker,
            worker_id=worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            device=None,
            status="foreground",
        )
        run = db.call(
            repo.create_run,
            spec=get_template(TEMPLATES[dataset_name]).spec,
            dataset=dataset_name,
            settings=config.to_dict(),
            status="running",
            worker_id=worker_id,
        )
        return worker.RunRecorder(run.id, worker_id=worker_id), "core.worker.RunRecorder"
    except Exception as error:
        print(f"(core.worker unavailable, using a plain sqlite3 writer: {error})", file=sys.stderr)
        return SqliteRecorder(folder), "sqlite3 batched writer"


def overhead(
    dataset_name: str, dataset, *, epochs: int, repeats: int, device: torch.device
) -> None:
    """Median of `repeats` runs each, interleaved so that machine noise hits all alike.

    The recorder runs twice: as it comes (its `background` flag) and on the loop's helper
    thread (`background = True`: database writes and checkpoint fsyncs overlap training)."""
    build = model_factory(dataset_name, dataset)
    batch_size = 64
    config = TrainConfig(
        epochs=epochs, batch_size=batch_size, optimizer="adam", lr=1e-3, device=str(device)
    )
    steps = epochs * -(-len(dataset.train) // batch_size)
    times: dict[str, list[float]] = {"hand": [], "hand fused": [], "as is": [], "background": []}
    kind = ""
    hand_loop(build(0), dataset, epochs=1, batch_size=batch_size, device=device)  # warm-up
    for repeat in range(repeats):
        for variant, fused in (("hand", False), ("hand fused", True)):
            times[variant].append(
                hand_loop(
                    build(0),
                    dataset,
                    epochs=epochs,
                    batch_size=batch_size,
                    device=device,
                    fused=fused,
                )
            )
        for variant in ("as is", "background"):
            with tempfile.TemporaryDirectory(prefix="bench-loop-") as folder:
                recorder, kind = studio_recorder(Path(folder), dataset_name, config)
                if variant == "background":
                    recorder.background = True
                model = build(0)
                started = time.perf_counter()
                result = fit(model, dataset, config, callbacks=[recorder])
                synchronize(device)
                times[variant].append(time.perf_counter() - started)
                assert result.status == "completed", result.error
                assert result.steps == steps, (result.steps, steps)
        print(
            f"  repeat {repeat + 1}: "
            + "  ".join(f"{name} {values[-1]:.2f}s" for name, values in times.items()),
            file=sys.stderr,
        )
    median = {name: statistics.median(values) for name, values in times.items()}
    samples = steps * batch_size
    print(
        f"overhead  {dataset_name:8s} {TEMPLATES[dataset_name]}, {steps} steps of {batch_size}, "
        f"adam, {epochs} epochs (with val + test eval), recorder: {kind}, checkpoint each epoch"
    )
    hand, fused = median["hand"], median["hand fused"]
    print(f"          hand loop, torch.optim.Adam         {samples / hand:9.0f} samples/s")
    print(f"          hand loop, Adam(fused=True)         {samples / fused:9.0f} samples/s")
    for variant, label in (("as is", "recorder as it comes"), ("background", "recorder on helper")):
        print(
            f"          studio fit(), {label:20s}  {samples / median[variant]:9.0f} samples/s"
            f" | ratio {hand / median[variant]:.3f} (goal >= 0.95)"
            f" | vs fused hand loop {fused / median[variant]:.3f}"
        )


# ---- 2. time to the textbook loop's accuracy -----------------------------------------------------


def textbook(model: nn.Module, dataset, *, epochs: int, device) -> tuple[float, float]:
    """PyTorch's CIFAR-10 tutorial loop. Returns (training seconds, final test accuracy)."""
    from torch.utils.data import DataLoader, TensorDataset

    started = time.perf_counter()
    model.to(device)
    loader = DataLoader(
        TensorDataset(dataset.train.x, dataset.train.y), batch_size=4, shuffle=True, num_workers=2
    )
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001, momentum=0.9)
    for _ in range(epochs):
        running_loss = 0.0
        for inputs, labels in loader:
            inputs, labels = inputs.to(device), labels.to(device)
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
    synchronize(device)
    seconds = time.perf_counter() - started
    model.eval()
    correct = 0
    with torch.no_grad():
        for inputs, labels in DataLoader(TensorDataset(dataset.test.x, dataset.test.y), 4):
            correct += (model(inputs.to(device)).argmax(1) == labels.to(device)).sum().item()
    return seconds, correct / len(dataset.test)


class ReachAccuracy(Callback):
    """Measures test accuracy at each epoch end (its own time excluded) and stops the run once
    it reaches `target`."""

    def __init__(self, model: nn.Module, dataset, target: float, device) -> None:
        self.model, self.target, self.device = model, target, device
        self.test_x, self.test_y = dataset.test.x.to(device), dataset.test.y.to(device)
        self.started = time.perf_counter()
        self.probe_s = 0.0
        self.reached_s: float | None = None
        self.best = 0.0

    def on_metrics(self, records: list[MetricRecord]) -> None:
        if self.reached_s is not None or not any(r.name == "val_loss" for r in records):
            return
        synchronize(self.device)
        now = time.perf_counter()
        was_training = self.model.training
        self.model.eval()
        with torch.inference_mode():
            logits = torch.cat([self.model(chunk) for chunk in self.test_x.split(1024)])
            accuracy = (logits.argmax(1) == self.test_y).float().mean().item()
        self.model.train(was_training)
        self.best = max(self.best, accuracy)
        if accuracy >= self.target:
            self.reached_s = now - self.started - self.probe_s
        self.probe_s += time.perf_counter() - now

    def control(self, *, step: int) -> str:
        return "stop" if self.reached_s is not None else "continue"


def time_to_accuracy(
    dataset_name: str, dataset, *, device: torch.device, textbook_epochs: int
) -> None:
    build = model_factory(dataset_name, dataset)
    textbook_s, target = textbook(build(0), dataset, epochs=textbook_epochs, device=device)
    model = build(0)
    config = TrainConfig()  # the studio's defaults
    probe = ReachAccuracy(model, dataset, target, device)
    result = fit(model, dataset, config, callbacks=[probe])
    assert result.status in ("completed", "cancelled"), result.error
    print(
        f"textbook  {dataset_name:8s} {TEMPLATES[dataset_name]}: textbook loop {textbook_epochs} "
        f"epochs -> test accuracy {target:.3f} in {textbook_s:.2f}s"
    )
    if probe.reached_s is None:
        print(
            f"          studio defaults did NOT reach it in {config.epochs} epochs "
            f"(best {probe.best:.3f}, {result.duration_s - probe.probe_s:.2f}s)"
        )
        return
    print(
        f"          studio defaults reach it in {probe.reached_s:.2f}s "
        f"(epoch {result.epochs}) | speedup {textbook_s / probe.reached_s:.1f}x  (goal >= 5x)"
    )


# ---- 3. the MNIST-1D paper's recipe: a whole `studio train` process vs a hand-written one ------

# The MNIST-1D paper's CNN (mnist1d's ConvBase): three strided Conv1d of 25 channels (kernels
# 5, 3, 3), ReLU after each, then Linear 125 -> 10. The studio's mnist1d-cnn template is a
# larger model, so the recipe carries its own spec.
PAPER_CNN = {
    "name": "mnist1d-paper-cnn",
    "input_shape": [1, 40],
    "layers": [
        {"type": "Conv1d", "out_channels": 25, "kernel_size": 5, "stride": 2, "padding": 1},
        {"type": "ReLU"},
        {"type": "Conv1d", "out_channels": 25, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "ReLU"},
        {"type": "Conv1d", "out_channels": 25, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10},
    ],
}
RECIPE = {"steps": 8000, "batch_size": 100, "optimizer": "adam", "lr": 0.01}
RECIPE_EVAL_EVERY = 250  # the paper's loop evaluates every 250 steps


def paper_cnn() -> nn.Module:
    """The paper's CNN written by hand, layer for layer the same as PAPER_CNN."""
    return nn.Sequential(
        nn.Conv1d(1, 25, 5, stride=2, padding=1), nn.ReLU(),  # (batch, 25, 19)
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),  # (batch, 25, 10)
        nn.Conv1d(25, 25, 3, stride=2, padding=1), nn.ReLU(),  # (batch, 25, 5)
        nn.Flatten(), nn.Linear(125, 10),
    )  # fmt: skip


def hand_recipe(dataset, device: torch.device, *, steps: int = RECIPE["steps"]) -> dict:
    """The recipe as a careful engineer writes it by hand: tensors on the device, a fresh
    shuffle each epoch, batches by indexing, Adam 0.01, validation loss and accuracy every 250
    steps (the paper's interval), test accuracy at the end."""
    seed_everything(0)
    model = paper_cnn().to(device)
    x, y = dataset.train.x.to(device), dataset.train.y.to(device)
    val_x, val_y = dataset.val.x.to(device), dataset.val.y.to(device)
    test_x, test_y = dataset.test.x.to(device), dataset.test.y.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=RECIPE["lr"])
    batch, curve = RECIPE["batch_size"], []
    order, position = torch.randperm(len(x), device=device), 0
    for step in range(1, steps + 1):
        if position + batch > len(x):
            order, position = torch.randperm(len(x), device=device), 0
        index = order[position : position + batch]
        position += batch
        model.train()
        loss = F.cross_entropy(model(x[index]), y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % RECIPE_EVAL_EVERY == 0 or step == steps:
            model.eval()
            with torch.inference_mode():
                logits = model(val_x)
                val_loss = F.cross_entropy(logits, val_y).item()
                val_accuracy = (logits.argmax(1) == val_y).float().mean().item()
            curve.append((step, loss.item(), val_loss, val_accuracy))
    model.eval()
    with torch.inference_mode():
        test_accuracy = (model(test_x).argmax(1) == test_y).float().mean().item()
    synchronize(device)
    return {"steps": steps, "val_points": len(curve), "test_accuracy": test_accuracy}


def _hand_recipe_process(device_name: str) -> int:
    """Entry point of the hand-written loop's own process (`--hand-recipe`)."""
    device = resolve_device(device_name)
    print(json.dumps(hand_recipe(load("mnist1d"), device)))
    return 0


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def recipe(*, repeats: int, device: torch.device) -> None:
    """Whole processes, interleaved: `studio train` on the recipe vs the hand-written loop (each
    loads the same cached mnist1d through core.data), then `fit()` alone (with the worker's
    recorder on a real SQLite file) vs the hand loop in this process."""
    studio = str(Path(sys.executable).with_name("studio"))
    with tempfile.TemporaryDirectory(prefix="bench-recipe-") as root:
        warm = Path(root) / "warm"
        # both processes use this process's torch thread count (--threads)
        env = {
            **os.environ,
            "STUDIO_HOME": str(warm),
            "OMP_NUM_THREADS": str(torch.get_num_threads()),
        }
        env.pop("STUDIO_DATABASE_URL", None)
        spec = Path(root) / "paper-cnn.json"
        spec.write_text(json.dumps(PAPER_CNN))
        _timed([sys.executable, "-c", "from core.data import load_dataset; "
                "load_dataset('mnist1d')"], env)  # fmt: skip
        flags = [f"--{k.replace('_', '-')}={v}" for k, v in RECIPE.items()]
        times: dict[str, list[float]] = {"hand process": [], "studio train": []}
        for repeat in range(repeats):
            home = Path(root) / f"studio-{repeat}"
            home.mkdir()
            (home / "datasets").symlink_to(warm / "datasets")  # the same cache, a fresh database
            hand_s, _ = _timed(
                [sys.executable, str(Path(__file__).resolve()), "--hand-recipe",
                 "--device", str(device)], env,
            )  # fmt: skip
            studio_s, out = _timed(
                [studio, "train", str(spec), "--dataset", "mnist1d", *flags,
                 "--device", str(device), "--json"],
                {**env, "STUDIO_HOME": str(home)},
            )  # fmt: skip
            result = json.loads(out)
            assert result["status"] == "completed" and result["steps"] == RECIPE["steps"], result
            times["hand process"].append(hand_s)
            times["studio train"].append(studio_s)
            print(f"  repeat {repeat + 1}: hand process {hand_s:.2f}s  studio train "
                  f"{studio_s:.2f}s  ratio {studio_s / hand_s:.3f}", file=sys.stderr)  # fmt: skip
    ratios = [s / h for s, h in zip(times["studio train"], times["hand process"], strict=True)]
    print(
        f"recipe    mnist1d paper CNN, adam 0.01, batch 100, {RECIPE['steps']} steps, device "
        f"{device}\n          whole process: hand loop {statistics.median(times['hand process']):.2f}s"
        f", studio train {statistics.median(times['studio train']):.2f}s | median ratio "
        f"{statistics.median(ratios):.3f} (goal <= 1.10)"
    )
    dataset = load("mnist1d")
    config = TrainConfig(**RECIPE, epochs=None, device=str(device))
    loop: dict[str, list[float]] = {"hand": [], "fit": []}
    for _ in range(repeats):
        started = time.perf_counter()
        hand_recipe(dataset, device)
        loop["hand"].append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory(prefix="bench-recipe-loop-") as folder:
            recorder, kind = studio_recorder(Path(folder), "mnist1d", config)
            from core.builder import build_model

            seed_everything(0)
            model = build_model(PAPER_CNN, dataset.facts)
            started = time.perf_counter()
            result = fit(model, dataset, config, callbacks=[recorder])
            synchronize(device)
            loop["fit"].append(time.perf_counter() - started)
            assert result.status == "completed", result.error
    ratios = [f / h for f, h in zip(loop["fit"], loop["hand"], strict=True)]
    print(
        f"          loop alone: hand loop {statistics.median(loop['hand']):.2f}s, studio fit() "
        f"{statistics.median(loop['fit']):.2f}s ({kind}) | median ratio "
        f"{statistics.median(ratios):.3f} (goal <= 1.0)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="overhead runs (median is shown)")
    parser.add_argument("--overhead-epochs", type=int, default=20)  # short runs are all noise
    parser.add_argument("--textbook-epochs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: default)"
    )
    parser.add_argument(
        "--only", choices=("overhead", "textbook", "recipe"), help="run one part only"
    )
    parser.add_argument("--hand-recipe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 epochs: a smoke run")
    args = parser.parse_args(argv)
    if args.hand_recipe:  # the hand-written loop's own process, started by recipe()
        return _hand_recipe_process(args.device)
    if args.quick:
        args.repeats, args.overhead_epochs = 1, 2
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {device_label(device)}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    if args.only == "recipe":
        recipe(repeats=args.repeats, device=device)
        return 0
    datasets = {name: load(name) for name in ("mnist1d", "digits")}  # loaded before timing
    for name, dataset in datasets.items():
        if args.only == "textbook":
            break
        overhead(name, dataset, epochs=args.overhead_epochs, repeats=args.repeats, device=device)
    for name in ("digits", "mnist1d"):
        if args.only == "overhead":
            break
        time_to_accuracy(name, datasets[name], device=device, textbook_epochs=args.textbook_epochs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
