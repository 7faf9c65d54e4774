"""Choosing what to explain: the samples a model gets wrong, or a picture a person uploads."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from core.errors import ExplainError

PREDICT_BATCH = 512  # samples per forward when scanning a split


def predictions(model: nn.Module, x: Tensor, *, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """The predicted class of every sample of `x` (batch, *sample_shape)."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    model.eval()
    chunks = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            chunks.append(model(x[start : start + batch_size].to(device)).argmax(dim=1).cpu())
    return torch.cat(chunks).numpy() if chunks else np.zeros(0, dtype=np.int64)


def misclassified(model: nn.Module, dataset: Any, split: str = "test") -> list[int]:
    """Indices of the `split` samples the model gets wrong, in order."""
    samples = getattr(dataset, split)
    predicted = predictions(model, samples.x)
    return np.flatnonzero(predicted != samples.y.numpy()).tolist()


def image_sample(dataset: Any, data: bytes) -> Tensor:
    """An uploaded picture as one normalized sample of an image dataset.

    Resized to the dataset's size, grey or colour as the dataset is, and inverted when its
    brightness is closer to the opposite of the training images' (dark ink on white paper
    for digits drawn white on black).
    """
    from PIL import Image, UnidentifiedImageError

    if getattr(dataset, "modality", None) != "image":
        raise ExplainError(f"{dataset.name!r} is not an image dataset; pick one of its samples")
    channels, height, width = dataset.sample_shape
    try:
        picture = Image.open(io.BytesIO(data))
        picture = picture.convert("L" if channels == 1 else "RGB").resize((width, height))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ExplainError(
            f"could not read the upload as an image (PNG or JPEG): {error}"
        ) from error
    raw = torch.tensor(np.asarray(picture, dtype=np.float32) / 255.0)
    raw = raw.unsqueeze(0) if channels == 1 else raw.permute(2, 0, 1)  # (C, H, W)
    typical = float(dataset.denormalize(dataset.train.x[:256]).mean())
    if abs((1 - float(raw.mean())) - typical) < abs(float(raw.mean()) - typical):
        raw = 1 - raw
    return dataset.normalize(raw)
