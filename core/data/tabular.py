"""`csv:PATH` uploads: numeric feature columns and a label column, or one sequence per row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.data.assemble import build_upload_dataset
from core.data.csvfile import check_complete, choose_column, labels_from, numeric_column, read_table
from core.data.dataset import Dataset
from core.errors import DataError


def load_csv_dataset(
    path: Path,
    *,
    name: str,
    val_fraction: float,
    seed: int,
    label: str | None = None,
    sequence: bool = False,
    task: str = "auto",
) -> Dataset:
    """Tabular rows (sample shape (F,)) or, with `sequence`, 1-D signals (sample shape (1, F))."""
    table = read_table(path)
    label_column = choose_column(table, label, role="label")
    features = [c for c in table.columns if c != label_column]
    if not features:
        raise DataError(
            f"{path.name} has only the label column {label_column!r}; add numeric feature columns"
        )
    check_complete(table, table.columns)
    task, y, class_names = labels_from(table, label_column, task=task)
    x = np.stack([numeric_column(table, c) for c in features], axis=1).astype(np.float32)
    if sequence:
        x = x[:, None, :]  # (n, 1, length): one channel per row's sequence
    return build_upload_dataset(
        x=x,
        y=y,
        task=task,
        val_fraction=val_fraction,
        seed=seed,
        name=name,
        modality="signal" if sequence else "tabular",
        class_names=class_names,
        feature_names=None if sequence else features,
        target_name=label_column,
        description=f"{path.name}: {len(y)} rows, {len(features)} "
        + ("time steps" if sequence else "features")
        + f", label {label_column!r}",
    )
