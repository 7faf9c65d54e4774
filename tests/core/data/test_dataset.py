"""The Dataset object: normalize / denormalize, human forms, info, shape checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import Dataset, DatasetInfo, Normalization, Split
from core.data.assemble import build_dataset


def tiny(modality: str, x: np.ndarray, **fields) -> Dataset:
    y = np.arange(len(x)) % 2
    return build_dataset(
        name="tiny", task="classification", modality=modality, class_names=["a", "b"],
        train_x=x, train_y=y, test_x=x[:2], test_y=y[:2], val_fraction=0.0, seed=0, **fields,
    )  # fmt: skip


def test_image_statistics_per_channel_and_round_trip() -> None:
    x = np.stack(
        [np.full((2, 3, 3), v, np.float32) * [[[1]], [[0.5]]] for v in (0.2, 0.4, 0.6, 0.8)]
    ).astype(np.float32)
    dataset = tiny("image", x)
    assert dataset.normalization.mean.flatten().tolist() == pytest.approx([0.5, 0.25])
    assert torch.allclose(dataset.denormalize(dataset.train.x), torch.from_numpy(x), atol=1e-6)
    picture = dataset.human(dataset.train.x[3])
    assert picture.shape == (3, 3, 2) and picture[0, 0].tolist() == [204, 102]


def test_tabular_human_is_named_values() -> None:
    x = np.array([[1, 10], [2, 20], [3, 30], [4, 40]], np.float32)
    dataset = tiny("tabular", x, feature_names=["rooms", "area"])
    assert dataset.human(dataset.train.x[1]) == pytest.approx({"rooms": 2.0, "area": 20.0})
    assert dataset.normalization.mean.tolist() == [2.5, 25.0]


def test_constant_feature_is_not_divided_by_zero() -> None:
    x = np.array([[1, 5], [2, 5], [3, 5]], np.float32)
    dataset = tiny("tabular", x)
    assert torch.isfinite(dataset.train.x).all() and dataset.normalization.std[1] == 1


def test_human_refuses_a_batch() -> None:
    dataset = tiny("signal", np.random.default_rng(0).normal(size=(4, 1, 5)).astype(np.float32))
    with pytest.raises(ValueError, match=r"sample of shape \(2, 1, 5\) does not match .* \(1, 5\)"):
        dataset.human(dataset.train.x[:2])


def test_info_and_contract_types() -> None:
    dataset = tiny("signal", np.zeros((4, 1, 5), np.float32))
    info = dataset.info()
    assert isinstance(info, DatasetInfo) and info.sizes == {"train": 4, "val": 0, "test": 2}
    assert info.to_dict()["sample_shape"] == [1, 5] and info.vocab_size is None
    assert isinstance(dataset.train, Split) and isinstance(dataset.normalization, Normalization)
    assert dataset.label_name(torch.tensor(1)) == "b" and dataset.num_classes == 2


def test_per_channel_vector_statistics_broadcast_over_the_image() -> None:
    """A Normalization built by hand with (C,) vectors means the same as (C, 1, 1)."""
    reference = tiny("image", np.random.default_rng(0).random((4, 3, 2, 2)).astype(np.float32))
    flat = Normalization(
        reference.normalization.mean.flatten(), reference.normalization.std.flatten()
    )
    by_hand = Dataset(**{**reference.__dict__, "normalization": flat})
    raw = torch.rand(5, 3, 2, 2)
    assert torch.allclose(by_hand.normalize(raw), reference.normalize(raw))
    assert torch.allclose(by_hand.denormalize(by_hand.normalize(raw)), raw, atol=1e-6)
    assert by_hand.info().input_dtype == torch.float32
