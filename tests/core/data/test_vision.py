"""mnist, fashion-mnist, cifar10 from tiny files in their real formats; the offline error."""

from __future__ import annotations

import pickle
from urllib.error import URLError

import numpy as np
import pytest
import torch

from core.data import describe_dataset, list_datasets, load_dataset, vision
from core.errors import DataError
from tests.core.data.conftest import write_cifar_files, write_mnist_files


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Tests never download: a download attempt fails as it does on an offline machine."""
    attempts: list[str] = []

    def offline(source: vision.VisionSource) -> None:
        attempts.append(source.name)
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(vision, "_download", offline)
    return attempts


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_idx_files_load_through_torchvision(name: str, no_network: list[str]) -> None:
    write_mnist_files(vision.files_folder(vision.SOURCES[name]), n_train=60, n_test=20)
    dataset = load_dataset(name)
    assert no_network == []
    assert dataset.sample_shape == (1, 28, 28) and dataset.num_classes == 10
    assert dataset.sizes == {"train": 54, "val": 6, "test": 20}
    assert dataset.train.x.dtype == torch.float32 and dataset.source == "torchvision"
    assert torch.bincount(dataset.val.y, minlength=10).tolist() == [1] * 6 + [0] * 4  # stratified
    assert dataset.human(dataset.test.x[0]).shape == (28, 28, 1)
    if name == "fashion-mnist":
        assert dataset.class_names[0] == "T-shirt/top"
    assert describe_dataset(name).sizes == dataset.sizes


def test_idx_pixels_survive_the_round_trip() -> None:
    folder = vision.files_folder(vision.SOURCES["mnist"])
    write_mnist_files(folder, n_train=30, n_test=10, seed=5)
    dataset = load_dataset("mnist", val_fraction=0.0)
    expected = np.random.default_rng(5).integers(0, 256, (30, 28, 28)).astype(np.uint8)
    first = dataset.train.indices[0]
    assert np.array_equal(dataset.human(dataset.train.x[0])[:, :, 0], expected[first])


def test_cifar_batches_load_with_class_names_from_meta() -> None:
    write_cifar_files(vision.files_folder(vision.SOURCES["cifar10"]), per_batch=10, n_test=10)
    dataset = load_dataset("cifar10", seed=1)
    assert dataset.sample_shape == (3, 32, 32)
    assert dataset.sizes == {"train": 45, "val": 5, "test": 10}
    assert dataset.class_names == [f"class{i}" for i in range(10)]
    assert dataset.normalization.mean.shape == (3, 1, 1)  # per channel
    assert dataset.human(dataset.train.x[0]).shape == (32, 32, 3)
    assert describe_dataset("cifar10").sizes == dataset.sizes


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_split_determinism(name: str) -> None:
    folder = vision.files_folder(vision.SOURCES[name])
    if name == "cifar10":
        write_cifar_files(folder, per_batch=20)
    else:
        write_mnist_files(folder, n_train=100)
    first, again = load_dataset(name, seed=7), load_dataset(name, seed=7)
    other = load_dataset(name, seed=8)
    assert torch.equal(first.val.indices, again.val.indices)
    assert not torch.equal(first.val.indices, other.val.indices)


def test_cifar_batch_that_is_not_plain_data_is_refused() -> None:
    folder = vision.files_folder(vision.SOURCES["cifar10"])
    write_cifar_files(folder)

    class Payload:
        def __reduce__(self):
            return (print, ("this must never run",))

    (folder / "data_batch_3").write_bytes(pickle.dumps({"data": Payload()}, protocol=2))
    with pytest.raises(DataError, match=r"data_batch_3 is not a readable CIFAR-10 batch.*print"):
        load_dataset("cifar10")


@pytest.mark.parametrize(
    ("name", "files", "folder"),
    [
        ("mnist", "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz", "MNIST/raw"),
        ("fashion-mnist", "t10k-images-idx3-ubyte.gz", "FashionMNIST/raw"),
        ("cifar10", "data_batch_1, data_batch_2", "cifar-10-batches-py"),
    ],
)
def test_offline_without_files_says_what_to_put_where(
    name: str, files: str, folder: str, no_network: list[str]
) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset(name)
    message = str(caught.value)
    assert no_network == [name]  # a download was tried first
    assert "could not be downloaded (<urlopen error [Errno -3]" in message
    assert files in message
    assert str(vision.root_dir() / folder) in message


def test_listing_marks_missing_files_unavailable() -> None:
    listed = {info.name: info for info in list_datasets()}
    assert listed["mnist"].available is False
    assert listed["cifar10"].sizes == {"train": 45000, "val": 5000, "test": 10000}
    write_mnist_files(vision.files_folder(vision.SOURCES["mnist"]))
    assert {i.name: i for i in list_datasets()}["mnist"].available is True
    assert describe_dataset("fashion-mnist").available is False
