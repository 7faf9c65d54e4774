"""Tiny files in the real on-disk formats, written by the tests themselves (nothing downloaded)."""

from __future__ import annotations

import csv
import gzip
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import get_settings


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (gzip) as distributed by MNIST: magic 0x0008NN, big-endian dims, bytes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def write_mnist_files(folder: Path, *, n_train: int = 60, n_test: int = 20, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)


def write_cifar_files(folder: Path, *, per_batch: int = 10, n_test: int = 10) -> None:
    """data_batch_1..5, test_batch and batches.meta as CIFAR-10's python version pickles them."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        batch = {
            "batch_label": name,
            "labels": [int(v) for v in np.arange(n) % 10],
            "data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
            "filenames": [f"img_{i}.png" for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


def write_csv(
    path: Path, header: list[str], rows: list[list[object]], encoding: str = "utf-8"
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding=encoding) as stream:
        writer = csv.writer(stream)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_image_folder(
    root: Path, classes: dict[str, int], *, size: int = 10, mode: str = "RGB"
) -> Path:
    """root/<class>/<i>.png with `count` small images per class, each class its own colour."""
    for position, (name, count) in enumerate(classes.items()):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            value = (position * 80 + i * 7) % 256
            colour = value if mode == "L" else (value, 255 - value, (value * 3) % 256)
            Image.new(mode, (size, size + i % 3), colour).save(folder / f"{i}.png")
    return root


def snapshot(root: Path) -> set[str]:
    """Every path under root, to prove a refused upload wrote nothing.

    The database (studio.db and its WAL/lock files) is left out: looking up registered names
    creates it, and a refused upload must leave no row in it, which the tests check separately.
    """
    if not root.exists():
        return set()
    return {str(p.relative_to(root)) for p in root.rglob("*") if not p.name.startswith("studio.db")}


@pytest.fixture(scope="session")
def mnist1d_generation(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Generate mnist1d once per session (about a second); what it printed and left behind."""
    import contextlib
    import io
    import os

    from core.data.builtin import MNIST1D_CACHE, load_mnist1d

    home = tmp_path_factory.mktemp("mnist1d_home")
    previous = os.environ.get("STUDIO_HOME")
    os.environ["STUDIO_HOME"] = str(home)
    stderr = io.StringIO()
    rng_before = np.random.get_state()[1].copy()
    try:
        with contextlib.redirect_stderr(stderr):
            load_mnist1d(val_fraction=0.1, seed=0)
        path = get_settings().dataset_cache_dir / MNIST1D_CACHE
    finally:
        if previous is None:
            del os.environ["STUDIO_HOME"]
        else:
            os.environ["STUDIO_HOME"] = previous
    return {
        "path": path,
        "stderr": stderr.getvalue(),
        "global_rng_untouched": bool(np.array_equal(rng_before, np.random.get_state()[1])),
    }


@pytest.fixture(scope="session")
def mnist1d_npz(mnist1d_generation: dict) -> Path:
    return mnist1d_generation["path"]


@pytest.fixture
def mnist1d_cached(mnist1d_npz: Path) -> Path:
    """The session's mnist1d cache copied into this test's STUDIO_HOME."""
    target = get_settings().dataset_cache_dir / mnist1d_npz.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(mnist1d_npz, target)
    return target
