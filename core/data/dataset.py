"""The in-memory dataset every part of the studio trains, previews and explains with.

A `Dataset` holds three splits of tensors that are already normalized, the normalization
statistics (computed on train only) and what is needed to turn a sample back into something a
person can look at: an image, a signal, a line of text or a row of named values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from core.facts import ModelFacts

TASKS = ("classification", "regression")
MODALITIES = ("image", "signal", "tabular", "text")
PAD_TOKEN = "<pad>"  # id 0: padding, ignored when text is shown
UNK_TOKEN = "<unk>"  # id 1: any word not in the training vocabulary


@dataclass(frozen=True)
class Split:
    """One split: `x` (n, *sample_shape) and `y` (n,); `indices` are rows of the source data."""

    x: Tensor  # float32 normalized, or int64 token ids for text
    y: Tensor  # int64 class indices, or float32 targets for regression
    indices: Tensor | None = None  # (n,) int64 positions in the source the split was cut from

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Normalization:
    """Mean and std shaped to broadcast against one sample, e.g. (C, 1, 1) for images.

    Per channel for images, per feature for tabular data, one global value for signals, and
    identity (0, 1) for text token ids.
    """

    mean: Tensor
    std: Tensor

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, without its tensors: for listings and `studio check --dataset`."""

    name: str
    task: str
    modality: str
    sample_shape: tuple[int, ...]
    num_classes: int  # 1 for regression: the number of model outputs
    class_names: list[str]
    sizes: dict[str, int]  # {"train": n, "val": n, "test": n}
    vocab_size: int | None = None
    source: str = "builtin"  # "builtin" | "torchvision" | "upload"
    description: str = ""
    available: bool = True  # False when files must be downloaded or put in place first

    @property
    def facts(self) -> ModelFacts:
        """What a model trained on this dataset is built for."""
        return ModelFacts(
            input_shape=tuple(self.sample_shape),
            num_classes=self.num_classes,
            vocab_size=self.vocab_size,
            modality=self.modality,
        )

    @property
    def input_dtype(self) -> torch.dtype:
        return self.facts.input_dtype

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "task": self.task,
            "modality": self.modality,
            "sample_shape": list(self.sample_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "sizes": dict(self.sizes),
            "vocab_size": self.vocab_size,
            "source": self.source,
            "description": self.description,
            "available": self.available,
        }


@dataclass(frozen=True)
class Dataset:
    """Train / val / test tensors plus everything needed to read a sample back."""

    name: str
    task: str  # "classification" | "regression"
    modality: str  # "image" | "signal" | "tabular" | "text"
    sample_shape: tuple[int, ...]  # excludes the batch dimension, e.g. (1, 8, 8)
    class_names: list[str]  # empty for regression
    train: Split
    val: Split
    test: Split
    normalization: Normalization
    vocabulary: list[str] | None = None  # text only: id -> token, <pad>=0, <unk>=1
    # regression only: y is stored standardized with these train statistics; MAE and predictions
    # are reported in the target's own units through `denormalize_target`
    target_normalization: Normalization | None = None
    feature_names: list[str] | None = None  # tabular only: column names in feature order
    target_name: str | None = None  # the label / target column of an upload
    description: str = ""
    source: str = "builtin"
    extras: dict[str, Any] = field(default_factory=dict)  # options it was loaded with

    @property
    def num_classes(self) -> int:
        """Number of model outputs: classes, or 1 for regression."""
        return len(self.class_names) if self.task == "classification" else 1

    @property
    def vocab_size(self) -> int | None:
        return len(self.vocabulary) if self.vocabulary is not None else None

    @property
    def facts(self) -> ModelFacts:
        """What a model trained on this dataset is built for."""
        return self.info().facts

    @property
    def input_dtype(self) -> torch.dtype:
        return self.facts.input_dtype

    @property
    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}

    def info(self) -> DatasetInfo:
        return DatasetInfo(
            name=self.name,
            task=self.task,
            modality=self.modality,
            sample_shape=tuple(self.sample_shape),
            num_classes=self.num_classes,
            class_names=list(self.class_names),
            sizes=self.sizes,
            vocab_size=self.vocab_size,
            source=self.source,
            description=self.description,
        )

    def _statistics(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """Mean and std shaped for one sample: (C, 1, 1) image, (C, 1) signal, (F,) tabular."""
        trailing = {"image": (1, 1), "signal": (1,)}.get(self.modality, ())
        mean, std = self.normalization.mean, self.normalization.std
        return (
            mean.to(device, torch.float32).reshape(-1, *trailing),
            std.to(device, torch.float32).reshape(-1, *trailing),
        )

    def normalize(self, raw: Tensor) -> Tensor:
        """Raw values (images in [0, 1], signals / features as given) -> model input."""
        if self.facts.is_text:
            return raw.to(self.input_dtype)
        mean, std = self._statistics(raw.device)
        return (raw.to(torch.float32) - mean) / std

    def denormalize(self, x: Tensor) -> Tensor:
        """Model input -> raw values; the inverse of `normalize`."""
        if self.modality == "text":
            return x
        mean, std = self._statistics(x.device)
        return x.to(torch.float32) * std + mean

    def denormalize_target(self, y: Tensor) -> Tensor:
        """Stored (standardized) regression targets or predictions -> the target's own units."""
        if self.target_normalization is None:
            return y
        mean, std = self.target_normalization.mean, self.target_normalization.std
        return y.to(torch.float32) * std.to(y.device) + mean.to(y.device)

    def label_name(self, y: int | float | Tensor) -> str:
        """A class index as its name, or a regression target (as stored) in its own units."""
        if self.task == "classification":
            value = y.item() if isinstance(y, Tensor) else y
            return self.class_names[int(value)]
        value = self.denormalize_target(torch.as_tensor(y, dtype=torch.float32)).reshape(-1)[0]
        return f"{float(value):.4g}"

    def human(self, x: Tensor) -> Any:
        """One normalized sample in the form a person reads it.

        image -> (H, W, C) uint8 numpy array; signal -> 1-D float numpy array;
        text -> a string of tokens (padding dropped); tabular -> {column: value}.
        """
        x = x.detach().cpu()
        if tuple(x.shape) != tuple(self.sample_shape):
            raise ValueError(
                f"sample of shape {tuple(x.shape)} does not match the dataset's sample shape "
                f"{tuple(self.sample_shape)}; pass one sample, not a batch"
            )
        if self.modality == "text":
            vocabulary = self.vocabulary or []
            words = [vocabulary[i] if 0 <= i < len(vocabulary) else UNK_TOKEN for i in x.tolist()]
            return " ".join(w for w in words if w != PAD_TOKEN)
        raw = self.denormalize(x)
        if self.modality == "image":
            pixels = (raw.clamp(0, 1) * 255).round().to(torch.uint8)  # (C, H, W)
            return pixels.permute(1, 2, 0).numpy()  # (H, W, C)
        if self.modality == "signal":
            return raw.flatten().numpy().astype(np.float32)
        names = self.feature_names or [f"feature_{i}" for i in range(raw.numel())]
        return {
            name: float(value) for name, value in zip(names, raw.flatten().tolist(), strict=True)
        }
