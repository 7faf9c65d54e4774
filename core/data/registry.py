"""Dataset names -> datasets: built-ins, torchvision, `kind:PATH` uploads, registered uploads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.data import catalog, uploads, vision
from core.data.builtin import load_digits, load_mnist1d
from core.data.dataset import Dataset, DatasetInfo
from core.data.splits import carve, check_fraction
from core.errors import DataError, NotFoundError


class UnknownDatasetError(DataError, NotFoundError):
    """A dataset name that is neither built in, an upload prefix, nor a registered upload."""


BUILTIN_LOADERS: dict[str, Callable[..., Dataset]] = {
    "digits": load_digits,
    "mnist1d": load_mnist1d,
}
# What list_datasets shows without loading anything (sizes at the default val_fraction=0.1, seed 0).
BUILTIN_INFO = {
    "digits": DatasetInfo(
        "digits", "classification", "image", (1, 8, 8), 10, [str(d) for d in range(10)],
        {"train": 1294, "val": 144, "test": 359}, None, "builtin",
        "scikit-learn's 8x8 handwritten digits (1797 images, 10 classes)",
    ),
    "mnist1d": DatasetInfo(
        "mnist1d", "classification", "signal", (1, 40), 10, [str(d) for d in range(10)],
        {"train": 3600, "val": 400, "test": 1000}, None, "builtin",
        "MNIST-1D: 1-D signals of the ten digits, generated locally (4000 / 1000)",
    ),
}  # fmt: skip


def builtin_names() -> list[str]:
    return [*BUILTIN_LOADERS, *vision.SOURCES]


def _taken_names() -> set[str]:
    return set(builtin_names()) | {record.name for record in catalog.list_records()}


def _unknown(name: str) -> UnknownDatasetError:
    registered = [record.name for record in catalog.list_records()]
    known = ", ".join(builtin_names() + registered)
    return UnknownDatasetError(
        f"unknown dataset {name!r}; use one of {known}, or an upload: "
        "csv:PATH, images:PATH (folder or .zip), text:PATH"
    )


def load_dataset(name: str, *, val_fraction: float = 0.1, seed: int = 0) -> Dataset:
    """Load a dataset into memory as normalized tensors with fixed train / val / test splits."""
    check_fraction(val_fraction)
    if not isinstance(seed, int):
        raise DataError(f"seed={seed!r} must be a whole number")
    name = name.strip()
    kind = name.partition(":")[0]
    if ":" in name and kind in uploads.KINDS:
        return uploads.load_named_source(name, val_fraction=val_fraction, seed=seed)
    if name in BUILTIN_LOADERS:
        return BUILTIN_LOADERS[name](val_fraction=val_fraction, seed=seed)
    if name in vision.SOURCES:
        return vision.load_vision(name, val_fraction=val_fraction, seed=seed)
    record = catalog.get_record(name) if uploads.NAME_PATTERN.fullmatch(name) else None
    if record is not None:
        return uploads.load_registered(record, val_fraction=val_fraction, seed=seed)
    raise _unknown(name)


def _vision_info(name: str) -> DatasetInfo:
    """Static facts, with sizes read from the files when they are already on this machine."""
    source = vision.SOURCES[name]
    local = vision.local_labels(name)
    if local is None:
        train, test = source.sizes
        val = round(0.1 * train)
        sizes, available = {"train": train - val, "val": val, "test": test}, False
    else:
        labels, test = local
        kept, carved = carve(len(labels), 0.1, seed=0, labels=labels)
        sizes, available = {"train": len(kept), "val": len(carved), "test": test}, True
    return DatasetInfo(
        name=name,
        task="classification",
        modality="image",
        sample_shape=source.sample_shape,
        num_classes=len(source.class_names),
        class_names=list(source.class_names),
        sizes=sizes,
        source="torchvision",
        description=source.description,
        available=available,
    )


def describe_dataset(name: str) -> DatasetInfo:
    """What a dataset is (shape, classes, split sizes at the defaults), as cheaply as possible."""
    name = name.strip()
    if name in BUILTIN_LOADERS:
        return load_dataset(name).info()  # digits and cached mnist1d load in milliseconds
    if name in vision.SOURCES:
        return _vision_info(name)
    if ":" in name and name.partition(":")[0] in uploads.KINDS:
        return load_dataset(name).info()
    record = catalog.get_record(name) if uploads.NAME_PATTERN.fullmatch(name) else None
    if record is not None:
        return uploads.info_from_record(record)
    raise _unknown(name)


def list_datasets() -> list[DatasetInfo]:
    """Built-ins, torchvision datasets (available or not) and registered uploads."""
    infos = [BUILTIN_INFO[name] for name in BUILTIN_LOADERS]
    for name, source in vision.SOURCES.items():
        train, test = source.sizes
        val = round(0.1 * train)
        infos.append(
            DatasetInfo(
                name=name,
                task="classification",
                modality="image",
                sample_shape=source.sample_shape,
                num_classes=len(source.class_names),
                class_names=list(source.class_names),
                sizes={"train": train - val, "val": val, "test": test},
                source="torchvision",
                description=source.description,
                available=vision.files_present(source),
            )
        )
    infos.extend(uploads.info_from_record(record) for record in catalog.list_records())
    return infos


def register_upload(
    kind: str, source_path: str | Path, *, name: str | None = None, **options: Any
) -> DatasetInfo:
    """Check an upload, copy it under STUDIO_HOME and list it by name from now on."""
    return uploads.register_upload(kind, source_path, name=name, taken=_taken_names(), **options)


def remove_upload(name: str) -> None:
    """Delete a registered upload and its files."""
    record = catalog.get_record(name) if uploads.NAME_PATTERN.fullmatch(name) else None
    if record is None:
        registered = ", ".join(r.name for r in catalog.list_records()) or "none"
        raise UnknownDatasetError(f"no registered upload named {name!r}; registered: {registered}")
    catalog.delete_record(name)
