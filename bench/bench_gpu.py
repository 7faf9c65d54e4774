"""GPU check and numbers, in one short script (a few minutes on one CUDA GPU).

1. Every template trains on CUDA through the studio's own loop (`core.train.fit`, data resident
   on the GPU): bf16 autocast + channels_last against float32 (no autocast, default layout),
   samples/s of each and the ratio.
2. Out of memory: a batch far too large for the GPU ends the run "failed" with the studio's
   message (naming the device, the step and a smaller batch size), the memory is given back,
   and the GPU trains again right after.
3. DistributedDataParallel with nccl on one GPU, launched by torchrun exactly as a worker
   launches a run with `processes` > 1 (core.train.distributed): it completes and trains.
4. A CIFAR-10-shaped fast preset: a ResNet-9-style spec, batch 512, one-cycle AdamW, bf16 +
   channels_last, on synthetic data of CIFAR-10's shape (50,000 x 3 x 32 x 32, 10 classes;
   nothing is downloaded): samples/s.

Data is synthetic (random inputs, random labels) with each template's dataset shape and size:
the script needs only PyTorch and this repository (no database, no dataset files), so it runs
on a bare GPU machine. Throughput does not depend on the values; accuracies are not reported.

    python bench/bench_gpu.py [--steps 300] [--json OUT.json]
    python bench/bench_gpu.py --dry-run-on-cpu   # the same code paths, tiny, on the CPU

Without CUDA it says so and exits 0 (unless --dry-run-on-cpu).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.builder import build_model  # noqa: E402
from core.facts import ModelFacts  # noqa: E402
from core.templates import list_templates  # noqa: E402
from core.train import Callback, TrainConfig, fit, seed_everything  # noqa: E402

# dataset name -> (sample shape, classes, train size): the shapes the templates were made for
SHAPES: dict[str, tuple[tuple[int, ...], int, int]] = {
    "digits": ((1, 8, 8), 10, 1_437),
    "mnist1d": ((1, 40), 10, 4_000),
    "cifar10": ((3, 32, 32), 10, 50_000),
}


def block(name: str, channels: int) -> list[dict[str, Any]]:
    """conv-BN-ReLU twice with a shortcut (Add) around them."""
    return [
        {"type": "Conv2d", "out_channels": channels, "kernel_size": 3, "padding": 1,
         "bias": False},
        {"type": "BatchNorm2d"}, {"type": "ReLU"},
        {"type": "Conv2d", "out_channels": channels, "kernel_size": 3, "padding": 1,
         "bias": False},
        {"type": "BatchNorm2d"}, {"type": "ReLU", "id": f"{name}_out"},
        {"type": "Add", "inputs": [name, f"{name}_out"]},
    ]  # fmt: skip


def conv(channels: int, *, pool: bool, name: str | None = None) -> list[dict[str, Any]]:
    layers: list[dict[str, Any]] = [
        {"type": "Conv2d", "out_channels": channels, "kernel_size": 3, "padding": 1,
         "bias": False},
        {"type": "BatchNorm2d"}, {"type": "ReLU"},
    ]  # fmt: skip
    if pool:
        layers.append({"type": "MaxPool2d", "kernel_size": 2})
    if name:
        layers[-1]["id"] = name
    return layers


# ResNet-9 (the DAWNBench CIFAR-10 design): 6.6M parameters
CIFAR_FAST = {
    "name": "cifar10-fast",
    "input_shape": [3, 32, 32],
    "layers": [
        *conv(64, pool=False),
        *conv(128, pool=True, name="r1"),
        *block("r1", 128),
        *conv(256, pool=True),
        *conv(512, pool=True, name="r2"),
        *block("r2", 512),
        {"type": "MaxPool2d", "kernel_size": 4},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10},
    ],
}
CIFAR_FAST_SETTINGS = {
    "batch_size": 512,
    "optimizer": "adamw",
    "lr": 0.002,
    "scheduler": "onecycle",
    "label_smoothing": 0.1,
}


def synthetic(shape: tuple[int, ...], classes: int, train: int, *, dtype=torch.float32):
    """A dataset object the loop accepts: random inputs and labels, 10% val, 20% test."""
    generator = torch.Generator().manual_seed(0)

    def split(n: int) -> SimpleNamespace:
        x = torch.randn((n, *shape), generator=generator, dtype=dtype)
        y = torch.randint(0, classes, (n,), generator=generator)
        return SimpleNamespace(x=x, y=y)

    return SimpleNamespace(
        task="classification",
        num_classes=classes,
        train=split(train),
        val=split(max(2, train // 10)),
        test=split(max(2, train // 5)),
        target_normalization=None,
    )


def train(spec, data, settings: dict[str, Any], *, channels_last: bool) -> dict[str, Any]:
    """One run through the studio's loop; samples/s of training, evaluation excluded."""
    seed_everything(0)
    shape = tuple(data.train.x.shape[1:])
    model = build_model(spec, ModelFacts(input_shape=shape, num_classes=data.num_classes))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # 4-D weights only
        if data.train.x.dim() == 4:
            for part in (data.train, data.val, data.test):
                part.x = part.x.contiguous(memory_format=torch.channels_last)
    config = TrainConfig.from_dict({"log_every": 50, **settings})
    started = time.perf_counter()
    result = fit(model, data, config, callbacks=[Callback()], checkpoint_every_s=1e9)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return {
        "status": str(result.status),
        "error": result.error,
        "steps": result.steps,
        "samples_per_s": result.samples_per_s,
        "seconds": time.perf_counter() - started,
    }


def templates(device: str, steps: int, scale: float) -> list[dict[str, Any]]:
    rows = []
    for template in list_templates():
        shape, classes, size = SHAPES.get(template.dataset or "", SHAPES["cifar10"])
        size = max(64, int(size * scale))
        batch = 256 if size >= 4000 else 64
        row: dict[str, Any] = {"template": template.name, "batch_size": batch}
        for label, precision, channels_last in (
            ("fp32", "fp32", False),
            ("bf16_cl", "bf16" if device.startswith("cuda") else "fp32", True),
        ):
            data = synthetic(shape, classes, size)
            settings = {"steps": steps, "batch_size": min(batch, size), "device": device,
                        "precision": precision}  # fmt: skip
            run = train(template.spec, data, settings, channels_last=channels_last)
            if run["status"] != "completed":
                raise SystemExit(f"{template.name} ({label}) did not complete: {run['error']}")
            row[label] = run["samples_per_s"]
        row["ratio"] = row["bf16_cl"] / max(row["fp32"], 1e-9)
        rows.append(row)
        print(
            f"  {row['template']:<22} batch {batch:>4}  fp32 {row['fp32']:>11,.0f}  "
            f"bf16+channels_last {row['bf16_cl']:>11,.0f}  x{row['ratio']:.2f}",
            flush=True,
        )
    return rows


TOO_BIG = {
    "name": "too-big",
    "layers": [
        {"type": "Conv2d", "out_channels": 512, "kernel_size": 3, "padding": 1},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 64},
        {"type": "Flatten"},
        {"type": "Linear"},
    ],
}


def out_of_memory(device: str) -> dict[str, Any]:
    """A run that cannot fit: the loop's message, the memory given back, training after."""
    # one sample: 512 channels x 512 x 512 activations (256 MiB in bf16): a batch of 1024 asks
    # for ~256 GiB in the first convolution alone, far past any GPU; the data itself (3 GiB) fits
    x = torch.randn((1024, 3, 512, 512))
    y = torch.randint(0, 10, (1024,))
    few = SimpleNamespace(x=x[:4], y=y[:4])
    data = SimpleNamespace(
        task="classification", num_classes=10, train=SimpleNamespace(x=x, y=y), val=few,
        test=few, target_normalization=None,
    )  # fmt: skip
    settings = {"steps": 2, "batch_size": 1024, "device": device}
    run = train(TOO_BIG, data, settings, channels_last=False)
    del data, x, y, few
    torch.cuda.empty_cache()
    allocated = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    after = train(
        CIFAR_FAST, synthetic((3, 32, 32), 10, 1024),
        {"steps": 5, "batch_size": 256, "device": device}, channels_last=True,
    )  # fmt: skip
    return {
        "status": run["status"],
        "message": run["error"],
        "allocated_after_bytes": allocated,
        "trains_after": after["status"] == "completed",
    }


def ddp_child(steps: int, *, tiny: bool) -> None:
    """One torchrun process: the studio's Shard and loop, no database (rank 0 prints JSON)."""
    from core.train.distributed import Shard

    device = "cuda" if torch.cuda.is_available() else "cpu"
    shard = Shard.start(device=device)
    spec = next(t.spec for t in list_templates() if t.dataset == "cifar10") if tiny else CIFAR_FAST
    data = synthetic((3, 32, 32), 10, 256 if tiny else 8192)
    config = TrainConfig.from_dict(
        {**CIFAR_FAST_SETTINGS, "steps": steps, "batch_size": 32 if tiny else 256,
         "log_every": 5, "precision": "auto"}
    )  # fmt: skip
    config = shard.adapt(config)
    seed_everything(0)
    model = build_model(spec, ModelFacts(input_shape=(3, 32, 32), num_classes=10))
    if shard.cuda:
        model = model.to(memory_format=torch.channels_last)
    result = fit(
        model,
        data,
        config,
        callbacks=shard.callbacks(Callback()),
        checkpoint_every_s=1e9,
        shard=shard,
    )
    import torch.distributed as dist

    backend = dist.get_backend()
    dist.destroy_process_group()
    if shard.leader:
        print(
            "DDP-RESULT "
            + json.dumps(
                {
                    "status": str(result.status),
                    "error": result.error,
                    "steps": result.steps,
                    "samples_per_s": result.samples_per_s,
                    "backend": backend,
                    "world": shard.world,
                }
            ),
            flush=True,
        )


def ddp(steps: int, *, tiny: bool) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1",
        str(Path(__file__).resolve()), "--ddp-child", "--steps", str(steps),
        *(["--dry-run-on-cpu"] if tiny else []),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: a timeout ends torchrun's workers too
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return {"status": "failed", "error": f"torchrun took over 300 s:\n{output[-3000:]}"}
    lines = [x for x in output.splitlines() if x.startswith("DDP-RESULT ")]
    if process.returncode != 0 or not lines:
        return {
            "status": "failed",
            "error": f"torchrun exit {process.returncode}:\n{output[-3000:]}",
        }
    return json.loads(lines[-1].removeprefix("DDP-RESULT "))


def cifar_fast(device: str, epochs: int, *, dry: bool) -> dict[str, Any]:
    shape, classes, size = SHAPES["cifar10"]
    data = synthetic(shape, classes, 64 if dry else size)
    settings = {**CIFAR_FAST_SETTINGS, "epochs": epochs, "device": device,
                "precision": "bf16" if device.startswith("cuda") else "fp32"}  # fmt: skip
    if dry:  # one small step: the spec builds and trains, nothing more on a CPU
        settings |= {"batch_size": 16, "steps": 1, "epochs": None}
    run = train(CIFAR_FAST, data, settings, channels_last=True)
    run["train_size"] = len(data.train.y)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="steps per template run")
    parser.add_argument("--cifar-epochs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--dry-run-on-cpu", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ddp-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ddp_child:
        ddp_child(args.steps, tiny=args.dry_run_on_cpu)
        return 0
    dry = args.dry_run_on_cpu
    if not torch.cuda.is_available() and not dry:
        print(
            "bench_gpu: no CUDA device is visible to PyTorch "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); nothing to "
            "measure here. Run it on a machine with an NVIDIA GPU."
        )
        return 0
    device = "cpu" if dry else "cuda"
    steps, scale = (3, 0.02) if dry else (args.steps, 1.0)
    name = "CPU (dry run)" if dry else torch.cuda.get_device_name(0)
    print(f"bench_gpu on {name}; torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
    if not dry:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its kernels
    figures: dict[str, Any] = {"device": name, "torch": torch.__version__}

    print(f"\n1. templates, {steps} steps each, data on the device (samples/s)", flush=True)
    figures["templates"] = templates(device, steps, scale)

    print("\n2. out of memory", flush=True)
    if dry:  # the spec passes the studio's own size limits: only the device can refuse it
        build_model(TOO_BIG, ModelFacts(input_shape=(3, 512, 512), num_classes=10))
        print("  the too-large model builds; training it is skipped on the CPU")
    else:
        oom = figures["oom"] = out_of_memory(device)
        print(f"  status: {oom['status']}\n  message: {oom['message']}")
        print(f"  allocated after: {oom['allocated_after_bytes'] / 2**20:.0f} MiB; "
              f"trains again: {oom['trains_after']}")  # fmt: skip

    print("\n3. DistributedDataParallel, 1 process via torchrun", flush=True)
    run = figures["ddp"] = ddp(4 if dry else 200, tiny=dry)
    if run["status"] == "completed":
        print(f"  backend {run['backend']}, world {run['world']}: {run['steps']} steps, "
              f"{run['samples_per_s']:,.0f} samples/s")  # fmt: skip
    else:
        print(f"  FAILED: {run['error']}")

    print("\n4. CIFAR-10-shaped fast preset (ResNet-9, batch 512, bf16 + channels_last)")
    fast = figures["cifar_fast"] = cifar_fast(device, args.cifar_epochs, dry=dry)
    epochs = 1 if dry else args.cifar_epochs
    print(f"  {fast['status']}: {fast['train_size']:,} samples x {epochs} epochs, "
          f"{fast['samples_per_s']:,.0f} samples/s, {fast['seconds']:.1f} s with evaluation")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    ok = run["status"] == "completed" and fast["status"] == "completed"
    if not dry:
        ok = ok and figures["oom"]["status"] == "failed" and figures["oom"]["trains_after"]
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
