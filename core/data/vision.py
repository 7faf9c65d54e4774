"""torchvision datasets (mnist, fashion-mnist, cifar10) kept under STUDIO_HOME.

Files are looked for first; when they are absent a download is tried, and when that fails the
error says which files to put in which folder. MNIST-style IDX files are read by torchvision's
own MNIST parser. CIFAR-10's python batches are pickles, so they are read with a restricted
unpickler that can only rebuild numpy arrays (plain pickle would run any code a planted file
holds); their md5 sums are checked by torchvision when it downloads them, not at every load.
"""

from __future__ import annotations

import gzip
import os
import pickle
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import get_settings
from core.data.assemble import build_dataset
from core.data.dataset import Dataset
from core.errors import DataError

DOWNLOAD_TIMEOUT_S = 20.0  # per network operation; an offline machine fails fast anyway
DIGIT_NAMES = [str(d) for d in range(10)]
FASHION_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
CIFAR10_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_FILES = (*CIFAR_TRAIN, "test_batch", "batches.meta")


@dataclass(frozen=True)
class VisionSource:
    name: str  # studio name
    torchvision_class: str  # class in torchvision.datasets
    sample_shape: tuple[int, int, int]
    class_names: list[str]
    sizes: tuple[int, int]  # train, test of the full dataset
    url: str  # where the files come from, for the error message
    description: str


SOURCES = {
    "mnist": VisionSource(
        "mnist", "MNIST", (1, 28, 28), DIGIT_NAMES, (60000, 10000),
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "MNIST handwritten digits, 28x28 grayscale (torchvision)",
    ),
    "fashion-mnist": VisionSource(
        "fashion-mnist", "FashionMNIST", (1, 28, 28), FASHION_NAMES, (60000, 10000),
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "Fashion-MNIST clothing images, 28x28 grayscale (torchvision)",
    ),
    "cifar10": VisionSource(
        "cifar10", "CIFAR10", (3, 32, 32), CIFAR10_NAMES, (50000, 10000),
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "CIFAR-10 colour photos, 32x32 RGB in 10 classes (torchvision)",
    ),
}  # fmt: skip


def root_dir() -> Path:
    """Where torchvision keeps its folders (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py)."""
    return get_settings().dataset_cache_dir


def files_folder(source: VisionSource) -> Path:
    if source.name == "cifar10":
        return root_dir() / CIFAR_FOLDER
    return root_dir() / source.torchvision_class / "raw"


def _expected_files(source: VisionSource) -> tuple[str, ...]:
    return CIFAR_FILES if source.name == "cifar10" else tuple(f + ".gz" for f in IDX_FILES)


def files_present(source: VisionSource) -> bool:
    folder = files_folder(source)
    if source.name == "cifar10":
        return all((folder / name).is_file() for name in CIFAR_FILES)
    return all((folder / f).is_file() or (folder / f"{f}.gz").is_file() for f in IDX_FILES)


def _missing_message(source: VisionSource, reason: str) -> str:
    folder = files_folder(source)
    if source.name == "cifar10":
        what = (
            f"put {', '.join(CIFAR_FILES)} (the contents of cifar-10-python.tar.gz from "
            f"{source.url}) in {folder}, or the archive itself in {root_dir()}"
        )
    else:
        what = f"put {', '.join(_expected_files(source))} (from {source.url}) in {folder}"
    return f"{source.name} files are not on this machine and could not be downloaded ({reason}); {what}"


def _download(source: VisionSource) -> None:
    """Let torchvision download (and md5-check) the files; raises on any network failure."""
    from torchvision import datasets

    dataset_class = getattr(datasets, source.torchvision_class)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        dataset_class(str(root_dir()), train=True, download=True)
    finally:
        socket.setdefaulttimeout(previous)


def _unpack_local_files(source: VisionSource) -> None:
    """Use files a person put in place: gunzip IDX .gz files, extract a genuine CIFAR archive."""
    from torchvision.datasets.utils import check_integrity, extract_archive

    folder = files_folder(source)
    if source.name == "cifar10":
        archive = root_dir() / "cifar-10-python.tar.gz"
        if not files_present(source) and archive.is_file():
            from torchvision.datasets import CIFAR10

            if not check_integrity(str(archive), CIFAR10.tgz_md5):
                raise DataError(
                    f"{archive} is not the original CIFAR-10 archive (md5 differs); download it "
                    f"again from {source.url}"
                )
            extract_archive(str(archive), str(root_dir()))
        return
    for name in IDX_FILES:
        packed = folder / f"{name}.gz"
        if not (folder / name).is_file() and packed.is_file():
            extract_archive(str(packed), str(folder))


def _reason(error: Exception) -> str:
    """The network error in one line (torchvision wraps it in a long multi-mirror report)."""
    text = str(error)
    found = re.search(r"<urlopen error [^>]*>", text)
    if found:
        return found.group(0)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def ensure_files(source: VisionSource) -> None:
    """Make sure the files are in place: local files first, then a download, else DataError."""
    try:
        _unpack_local_files(source)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(
            f"{source.name} files in {files_folder(source)} are damaged: {error}"
        ) from None
    if files_present(source):
        return
    try:
        root_dir().mkdir(parents=True, exist_ok=True)
        _download(source)
    except Exception as error:  # URLError, timeouts, RuntimeError from torchvision, ...
        raise DataError(_missing_message(source, _reason(error))) from None
    if not files_present(source):
        raise DataError(_missing_message(source, "the download did not produce them"))


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numpy arrays only; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
        ("_codecs", "encode"): ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        target = self.ALLOWED.get((module, name))
        if target is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR batch")
        return super().find_class(*target)


def read_cifar_batch(path: Path) -> dict[str, Any]:
    """One CIFAR-10 python batch (or batches.meta) through the restricted unpickler."""
    try:
        with open(path, "rb") as stream:
            entry = _ArrayUnpickler(stream, encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise DataError(f"{path} is not a readable CIFAR-10 batch: {error}") from None
    if not isinstance(entry, dict):
        raise DataError(f"{path} is not a readable CIFAR-10 batch: it holds no dictionary")
    return entry


def _cifar_split(files: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    folder = files_folder(SOURCES["cifar10"])
    images, labels = [], []
    for name in files:
        entry = read_cifar_batch(folder / name)
        try:
            data = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            targets = np.asarray(entry["labels"], dtype=np.int64)
        except (KeyError, ValueError) as error:
            raise DataError(f"{folder / name} is not a CIFAR-10 batch: {error}") from None
        if len(data) != len(targets):
            raise DataError(f"{folder / name} holds {len(data)} images but {len(targets)} labels")
        images.append(data)
        labels.append(targets)
    return np.concatenate(images), np.concatenate(labels)


def _cifar_class_names() -> list[str]:
    meta = read_cifar_batch(files_folder(SOURCES["cifar10"]) / "batches.meta")
    names = meta.get("label_names")
    return [str(n) for n in names] if isinstance(names, list) and names else CIFAR10_NAMES


def _mnist_split(source: VisionSource, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision import datasets

    dataset_class = getattr(datasets, source.torchvision_class)
    try:
        dataset = dataset_class(str(root_dir()), train=train, download=False)
    except (RuntimeError, ValueError, TypeError, OSError) as error:
        raise DataError(
            f"{source.name} files in {files_folder(source)} are unreadable: {error}"
        ) from None
    images, labels = dataset.data, dataset.targets  # (n, 28, 28) uint8, (n,) int64
    if len(images) != len(labels):
        raise DataError(
            f"{source.name} {'train' if train else 'test'} files hold {len(images)} images but "
            f"{len(labels)} labels"
        )
    return images, labels


def load_vision(name: str, *, val_fraction: float, seed: int) -> Dataset:
    """Load a torchvision dataset into memory: images in [0, 1], val carved from train."""
    source = SOURCES[name]
    ensure_files(source)
    class_names = source.class_names
    if name == "cifar10":
        train_images, train_labels = _cifar_split(CIFAR_TRAIN)
        test_images, test_labels = _cifar_split(("test_batch",))
        class_names = _cifar_class_names()
        train_x = torch.from_numpy(train_images).to(torch.float32).div_(255.0)
        test_x = torch.from_numpy(test_images).to(torch.float32).div_(255.0)
    else:
        train_images, train_labels = _mnist_split(source, train=True)
        test_images, test_labels = _mnist_split(source, train=False)
        train_x = train_images.unsqueeze(1).to(torch.float32).div_(255.0)  # (n, 1, 28, 28)
        test_x = test_images.unsqueeze(1).to(torch.float32).div_(255.0)
    for labels in (train_labels, test_labels):
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(class_names)):
            raise DataError(
                f"{source.name} labels run from {int(labels.min())} to {int(labels.max())}; "
                f"expected 0..{len(class_names) - 1}"
            )
    return build_dataset(
        name=name,
        task="classification",
        modality="image",
        class_names=class_names,
        train_x=train_x,
        train_y=train_labels,
        test_x=test_x,
        test_y=test_labels,
        val_fraction=val_fraction,
        seed=seed,
        description=source.description,
        source="torchvision",
    )


def _idx_count(path: Path) -> int:
    """Number of items in an IDX file (plain or .gz) from its 8-byte header."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as stream:
        header = stream.read(8)
    return struct.unpack(">I", header[4:8])[0]


def local_labels(name: str) -> tuple[np.ndarray, int] | None:
    """(train labels, test count) read from files already on disk, or None when absent."""
    source = SOURCES[name]
    if not files_present(source):
        return None
    folder = files_folder(source)
    try:
        if name == "cifar10":
            train = np.concatenate(
                [np.asarray(read_cifar_batch(folder / f).get("labels", [])) for f in CIFAR_TRAIN]
            )
            test_count = len(read_cifar_batch(folder / "test_batch").get("labels", []))
            return train.astype(np.int64), test_count
        from torchvision.datasets.mnist import read_label_file

        _unpack_local_files(source)
        train = read_label_file(os.fspath(folder / IDX_FILES[1])).numpy()
        return train, _idx_count(folder / IDX_FILES[3])
    except (OSError, EOFError, ValueError, TypeError, struct.error, RuntimeError):
        return None
