"""Arrays in, `Dataset` out: carve validation, compute normalization on train, normalize."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from core.data.dataset import Dataset, Normalization, Split
from core.data.splits import TEST_FRACTION, TEST_SEED, carve
from core.errors import DataError
from core.facts import input_dtype_for

MIN_UPLOAD_ROWS = 3  # one row each for train, validation and test
MIN_STD = 1e-8  # a constant channel / feature is left unscaled instead of divided by zero


def normalization_for(modality: str, train_x: torch.Tensor) -> Normalization:
    """Statistics of the train split: per channel (image), per feature (tabular), global (signal)."""
    if modality == "text" or train_x.shape[0] == 0:
        shape = (1,) * (train_x.dim() - 1)
        return Normalization(mean=torch.zeros(shape), std=torch.ones(shape))
    x = train_x.to(torch.float64)
    if modality == "image":  # (n, C, H, W) -> (C, 1, 1)
        mean = x.mean(dim=(0, 2, 3)).view(-1, 1, 1)
        std = x.std(dim=(0, 2, 3), unbiased=False).view(-1, 1, 1)
    elif modality == "tabular":  # (n, F) -> (F,)
        mean, std = x.mean(dim=0), x.std(dim=0, unbiased=False)
    else:  # signal (n, C, L) -> one value shaped (1, 1)
        mean = x.mean().view(1, 1)
        std = x.std(unbiased=False).view(1, 1)
    std = torch.where(std < MIN_STD, torch.ones_like(std), std)
    return Normalization(mean=mean.to(torch.float32), std=std.to(torch.float32))


def build_dataset(
    *,
    name: str,
    task: str,
    modality: str,
    class_names: list[str],
    train_x: np.ndarray | torch.Tensor,
    train_y: np.ndarray | torch.Tensor,
    test_x: np.ndarray | torch.Tensor,
    test_y: np.ndarray | torch.Tensor,
    val_fraction: float,
    seed: int,
    train_indices: np.ndarray | None = None,
    test_indices: np.ndarray | None = None,
    **fields: Any,
) -> Dataset:
    """Carve val from train (stratified for classification), normalize with train statistics.

    `train_x` / `test_x` are raw values: images in [0, 1], signals and features as given, token ids
    for text. Indices say which source rows each split holds (default: positions in train / test).
    """
    x_dtype = input_dtype_for(modality)
    y_dtype = torch.int64 if task == "classification" else torch.float32
    train_x = torch.as_tensor(train_x).to(x_dtype)
    test_x = torch.as_tensor(test_x).to(x_dtype)
    train_y = torch.as_tensor(train_y).to(y_dtype)
    test_y = torch.as_tensor(test_y).to(y_dtype)
    n_train = int(train_y.shape[0])
    source_train = (
        torch.arange(n_train) if train_indices is None else torch.as_tensor(train_indices)
    )
    source_test = (
        torch.arange(int(test_y.shape[0]))
        if test_indices is None
        else torch.as_tensor(test_indices)
    )
    labels = train_y.numpy() if task == "classification" else None
    kept, carved = carve(n_train, val_fraction, seed=seed, labels=labels)
    kept_t, carved_t = torch.from_numpy(kept), torch.from_numpy(carved)
    normalization = normalization_for(modality, train_x[kept_t])
    target = target_normalization_for(train_y[kept_t]) if task == "regression" else None

    def split(x: torch.Tensor, y: torch.Tensor, indices: torch.Tensor) -> Split:
        if modality != "text":
            x = ((x - normalization.mean) / normalization.std).to(torch.float32).contiguous()
        if target is not None:  # targets of any scale train well with the default settings
            y = ((y - target.mean) / target.std).to(torch.float32)
        return Split(x=x, y=y.contiguous(), indices=indices.to(torch.int64))

    return Dataset(
        name=name,
        task=task,
        modality=modality,
        sample_shape=tuple(int(d) for d in train_x.shape[1:]),
        class_names=list(class_names),
        train=split(train_x[kept_t], train_y[kept_t], source_train[kept_t]),
        val=split(train_x[carved_t], train_y[carved_t], source_train[carved_t]),
        test=split(test_x, test_y, source_test),
        normalization=normalization,
        target_normalization=target,
        **fields,
    )


def target_normalization_for(y: torch.Tensor) -> Normalization:
    """Mean and std of regression targets on train (std 1 where a target is constant)."""
    y = y.to(torch.float64)
    std = y.std(dim=0, unbiased=False) if len(y) > 1 else torch.ones(y.shape[1:], dtype=y.dtype)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return Normalization(mean=y.mean(dim=0).to(torch.float32), std=std.to(torch.float32))


def upload_splits(
    y: np.ndarray, *, task: str, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train pool, test, train after val) row indices of an upload, which has no test split.

    Test is carved with a fixed seed so it never moves; val is carved from the pool with `seed`
    exactly as `build_dataset` will carve it, so the last array is the rows training sees.
    """
    labels = y if task == "classification" else None
    pool, test = carve(len(y), TEST_FRACTION, seed=TEST_SEED, labels=labels)
    pool_labels = labels[pool] if labels is not None else None
    kept, _ = carve(len(pool), val_fraction, seed=seed, labels=pool_labels)
    return pool, test, pool[kept]


def build_upload_dataset(
    *,
    x: np.ndarray | torch.Tensor,
    y: np.ndarray,
    task: str,
    val_fraction: float,
    seed: int,
    **fields: Any,
) -> Dataset:
    """An upload's rows -> Dataset: fixed-seed test carve, then val from train with `seed`."""
    if len(y) < MIN_UPLOAD_ROWS:
        raise DataError(
            f"{fields.get('name', 'the upload')} has {len(y)} rows; at least {MIN_UPLOAD_ROWS} are "
            "needed to make train, validation and test splits"
        )
    pool, test, _ = upload_splits(y, task=task, val_fraction=val_fraction, seed=seed)
    return build_dataset(
        task=task,
        train_x=x[pool],
        train_y=y[pool],
        test_x=x[test],
        test_y=y[test],
        train_indices=pool,
        test_indices=test,
        val_fraction=val_fraction,
        seed=seed,
        source="upload",
        **fields,
    )
