"""Datasets: built-in, torchvision and uploads, as in-memory tensors with fixed splits."""

from core.data.dataset import Dataset, DatasetInfo, Normalization, Split
from core.data.registry import (
    UnknownDatasetError,
    describe_dataset,
    list_datasets,
    load_dataset,
    register_upload,
    remove_upload,
)
from core.data.uploads import KINDS as UPLOAD_KINDS
from core.data.uploads import OPTIONS as UPLOAD_OPTIONS

__all__ = [
    "Dataset",
    "DatasetInfo",
    "Normalization",
    "Split",
    "UPLOAD_KINDS",
    "UPLOAD_OPTIONS",
    "UnknownDatasetError",
    "describe_dataset",
    "list_datasets",
    "load_dataset",
    "register_upload",
    "remove_upload",
]
