"""Offline built-in datasets: scikit-learn's `digits` and locally generated `mnist1d`."""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.config import get_settings
from core.data.assemble import build_dataset
from core.data.dataset import Dataset
from core.data.splits import TEST_FRACTION, TEST_SEED, carve
from core.errors import DataError
from core.progress import ProgressBar

DIGIT_NAMES = [str(d) for d in range(10)]
DIGITS_CACHE = "digits-v1.npz"  # bump the suffix when the split or the arrays change
MNIST1D_CACHE = "mnist1d-default-v1.npz"  # bump the suffix if the generation arguments change
MNIST1D_SIZES = (4000, 1000)  # train, test with the package's default arguments
CACHE_KEYS = ("x", "y", "x_test", "y_test", "train_indices", "test_indices")
DIGITS_RAW_MAX = 16.0  # scikit-learn's digits count ink in 0..16; the studio scales them to [0, 1]


def _read_cache(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in keys}
    except (OSError, KeyError, ValueError):
        return None  # a damaged cache is rebuilt


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".partial-", suffix=".npz")
    except OSError as error:
        raise DataError(f"could not write the dataset cache {path}: {error}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
        os.replace(temporary, path)  # atomic: a reader never sees half a file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cached_arrays(
    filename: str, make: Callable[[], dict[str, np.ndarray]], *, valid: Callable[[dict], bool]
) -> dict[str, np.ndarray]:
    """Arrays from dataset_cache_dir/filename (.npz, no pickle), made and saved on first use."""
    path = get_settings().dataset_cache_dir / filename
    keys = tuple(CACHE_KEYS)
    arrays = _read_cache(path, keys) if path.exists() else None
    if arrays is None or not valid(arrays):
        arrays = make()
        _write_cache(path, arrays)
    return arrays


def _make_digits() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_digits  # ~1 s import: only on a cold cache

    bunch = sklearn_digits()
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = carve(len(labels), TEST_FRACTION, seed=TEST_SEED, labels=labels)
    images = bunch.images.astype(np.float32)[:, None, :, :] / DIGITS_RAW_MAX  # (n, 1, 8, 8)
    return {
        "x": images[train_idx],
        "y": labels[train_idx],
        "x_test": images[test_idx],
        "y_test": labels[test_idx],
        "train_indices": train_idx,
        "test_indices": test_idx,
    }


def load_digits(*, val_fraction: float, seed: int) -> Dataset:
    """8x8 digits (1797 images): fixed stratified 80/20 train/test, val carved from train."""
    arrays = cached_arrays(
        DIGITS_CACHE, _make_digits, valid=lambda a: a["x"].shape[1:] == (1, 8, 8)
    )
    return build_dataset(
        name="digits",
        task="classification",
        modality="image",
        class_names=DIGIT_NAMES,
        train_x=arrays["x"],
        train_y=arrays["y"],
        test_x=arrays["x_test"],
        test_y=arrays["y_test"],
        train_indices=arrays["train_indices"],
        test_indices=arrays["test_indices"],
        val_fraction=val_fraction,
        seed=seed,
        description="scikit-learn's 8x8 handwritten digits (1797 images, 10 classes)",
    )


def _make_mnist1d() -> dict[str, np.ndarray]:
    """Run the mnist1d package's own generator with its default arguments (never downloads)."""
    progress = ProgressBar(3, label="mnist1d")
    progress.update(0, "importing the generator", force=True)
    from mnist1d.data import get_dataset_args, make_dataset

    progress.update(1, "generating 5000 signals", force=True)
    # make_dataset seeds the global numpy / random generators; keep the caller's state intact
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        generated = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    progress.update(3, "saving the cache", force=True)
    progress.close()
    n_train, n_test = len(generated["y"]), len(generated["y_test"])
    return {
        "x": np.asarray(generated["x"], dtype=np.float32),
        "y": np.asarray(generated["y"], dtype=np.int64),
        "x_test": np.asarray(generated["x_test"], dtype=np.float32),
        "y_test": np.asarray(generated["y_test"], dtype=np.int64),
        "train_indices": np.arange(n_train, dtype=np.int64),
        "test_indices": np.arange(n_test, dtype=np.int64),
    }


def _mnist1d_valid(arrays: dict[str, np.ndarray]) -> bool:
    sizes = (len(arrays["y"]), len(arrays["y_test"]))
    return sizes == MNIST1D_SIZES and arrays["x"].shape[1:] == (40,)


def load_mnist1d(*, val_fraction: float, seed: int) -> Dataset:
    """40-sample 1-D signals, 4000 train / 1000 test, shape (1, 40), val carved from train."""
    arrays = cached_arrays(MNIST1D_CACHE, _make_mnist1d, valid=_mnist1d_valid)
    return build_dataset(
        name="mnist1d",
        task="classification",
        modality="signal",
        class_names=DIGIT_NAMES,
        train_x=arrays["x"][:, None, :],
        train_y=arrays["y"],
        test_x=arrays["x_test"][:, None, :],
        test_y=arrays["y_test"],
        val_fraction=val_fraction,
        seed=seed,
        description="MNIST-1D: 1-D signals of the ten digits, generated locally (4000 / 1000)",
    )
