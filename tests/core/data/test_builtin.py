"""digits and mnist1d: shapes, classes, split sizes, determinism, cache, normalization."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.config import get_settings
from core.data import describe_dataset, list_datasets, load_dataset
from core.data.builtin import DIGITS_CACHE


def test_digits_shapes_classes_and_sizes() -> None:
    dataset = load_dataset("digits")
    assert dataset.task == "classification" and dataset.modality == "image"
    assert dataset.sample_shape == (1, 8, 8) and dataset.num_classes == 10
    assert dataset.sizes == {"train": 1294, "val": 144, "test": 359}
    assert dataset.train.x.shape == (1294, 1, 8, 8) and dataset.train.x.dtype == torch.float32
    assert dataset.train.y.dtype == torch.int64 and dataset.input_dtype == torch.float32
    # stratified: every class is in every split in about the same share
    for split in (dataset.train, dataset.val, dataset.test):
        counts = torch.bincount(split.y, minlength=10)
        assert counts.min() > 0 and counts.max() - counts.min() <= max(3, len(split) // 50)
    # the three splits are disjoint and together the whole of scikit-learn's 1797 images
    train_pool = torch.cat([dataset.train.indices, dataset.val.indices, dataset.test.indices])
    assert sorted(train_pool.tolist()) == list(range(1797))


def test_digits_normalized_with_train_statistics_only() -> None:
    dataset = load_dataset("digits")
    assert abs(float(dataset.train.x.mean())) < 1e-4
    assert abs(float(dataset.train.x.std()) - 1) < 1e-2
    assert dataset.normalization.mean.shape == (1, 1, 1)
    image = dataset.human(dataset.test.x[0])
    assert image.shape == (8, 8, 1) and image.dtype == np.uint8
    raw = dataset.denormalize(dataset.test.x[:5])
    assert torch.allclose(dataset.normalize(raw), dataset.test.x[:5], atol=1e-5)
    assert float(raw.min()) >= 0 and float(raw.max()) <= 1 + 1e-6


@pytest.mark.parametrize("name", ["digits", "mnist1d"])
def test_split_determinism(name: str, mnist1d_cached) -> None:
    first = load_dataset(name, seed=3)
    again = load_dataset(name, seed=3)
    other = load_dataset(name, seed=4)
    assert torch.equal(first.val.indices, again.val.indices)
    assert torch.equal(first.train.x, again.train.x)
    assert not torch.equal(first.val.indices, other.val.indices)
    assert torch.equal(first.test.indices, other.test.indices)  # test is the dataset's own
    assert not set(first.val.indices.tolist()) & set(first.train.indices.tolist())


def test_val_fraction_changes_val_size_and_bad_values_are_refused() -> None:
    assert load_dataset("digits", val_fraction=0.25).sizes["val"] == 360
    assert load_dataset("digits", val_fraction=0.0).sizes["val"] == 0
    with pytest.raises(Exception, match=r"val_fraction=1.5 is out of range"):
        load_dataset("digits", val_fraction=1.5)


def test_digits_cache_is_written_and_reused() -> None:
    load_dataset("digits")
    assert (get_settings().dataset_cache_dir / DIGITS_CACHE).is_file()
    assert load_dataset("digits").sizes["test"] == 359


def test_mnist1d_shapes_sizes_and_global_normalization(mnist1d_cached) -> None:
    dataset = load_dataset("mnist1d")
    assert dataset.modality == "signal" and dataset.sample_shape == (1, 40)
    assert dataset.sizes == {"train": 3600, "val": 400, "test": 1000}
    assert dataset.num_classes == 10
    assert torch.bincount(dataset.test.y, minlength=10).min() > 50
    assert dataset.normalization.mean.shape == (1, 1)  # one global value for signals
    signal = dataset.human(dataset.train.x[0])
    assert signal.shape == (40,) and signal.dtype == np.float32


def test_mnist1d_generated_with_progress_and_cached(mnist1d_generation, mnist1d_cached, capsys):
    assert "mnist1d" in mnist1d_generation["stderr"]  # a progress bar while generating
    assert mnist1d_generation["global_rng_untouched"]  # make_dataset's global seeding undone
    with np.load(mnist1d_cached, allow_pickle=False) as cached:
        assert cached["x"].shape == (4000, 40) and cached["x_test"].shape == (1000, 40)
        assert cached["x"].dtype == np.float32
    first = load_dataset("mnist1d")
    second = load_dataset("mnist1d")
    assert capsys.readouterr().err == ""  # loaded from the cache: nothing generated
    assert torch.equal(first.train.x, second.train.x)


def test_damaged_mnist1d_cache_is_regenerated(mnist1d_cached, monkeypatch) -> None:
    from core.data import builtin

    with np.load(mnist1d_cached, allow_pickle=False) as cached:
        arrays = {key: cached[key] for key in cached.files}
    calls = []
    monkeypatch.setattr(builtin, "_make_mnist1d", lambda: calls.append(1) or arrays)
    mnist1d_cached.write_bytes(b"not an npz")
    assert load_dataset("mnist1d").sizes["test"] == 1000
    assert calls == [1]
    assert load_dataset("mnist1d").sizes["test"] == 1000
    assert calls == [1]  # the rewritten cache is used again


def test_describe_and_list_match_what_loads(mnist1d_cached) -> None:
    for name in ("digits", "mnist1d"):
        info = describe_dataset(name)
        listed = next(i for i in list_datasets() if i.name == name)
        loaded = load_dataset(name)
        assert info.sizes == listed.sizes == loaded.sizes
        assert info.sample_shape == listed.sample_shape == loaded.sample_shape
        assert info.num_classes == listed.num_classes == 10


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(Exception, match=r"unknown dataset 'digit'; use one of digits, mnist1d"):
        load_dataset("digit")
