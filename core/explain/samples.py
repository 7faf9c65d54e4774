"""Choosing what to explain: the samples a model gets wrong, or a picture a person uploads or
draws."""

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

    _require_images(dataset)
    try:
        picture = Image.open(io.BytesIO(data))
        raw = _resized(dataset, picture)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ExplainError(
            f"could not read the upload as an image (PNG or JPEG): {error}"
        ) from error
    typical = _typical_brightness(dataset)
    if abs((1 - float(raw.mean())) - typical) < abs(float(raw.mean()) - typical):
        raw = 1 - raw
    return dataset.normalize(raw)


def drawing_colors(dataset: Any) -> tuple[str, str]:
    """(ink, paper) colours for drawing a sample by hand, as the dataset's pictures look:
    white on black for digits, black on white for datasets of mostly light pictures."""
    _require_images(dataset)
    return ("#FFFFFF", "#000000") if _typical_brightness(dataset) < 0.5 else ("#000000", "#FFFFFF")


def drawn_sample(dataset: Any, rgba: np.ndarray) -> Tensor:
    """A drawing from the canvas, (H, W, 4) uint8 RGBA, as one normalized sample.

    Transparent pixels are the paper `drawing_colors` gives; the ink keeps its place (a stroke
    in the top-left stays top-left); the picture is resized like an upload and inverted when
    its paper is light and the dataset's is dark, or the other way round.
    """
    from PIL import Image

    _require_images(dataset)
    pixels = np.asarray(rgba)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ExplainError(f"a drawing must be (height, width, RGBA); got shape {pixels.shape}")
    colour = pixels[..., :3].astype(np.float32) / 255.0  # (H, W, 3)
    alpha = pixels[..., 3:].astype(np.float32) / 255.0 if pixels.shape[2] == 4 else 1.0
    paper_colour = 1.0 if drawing_colors(dataset)[1] == "#FFFFFF" else 0.0
    flat = colour * alpha + paper_colour * (1 - alpha)
    # the paper covers most of a drawing, so the median brightness is the paper's
    light_paper = float(np.median(flat.mean(axis=-1))) >= 0.5
    picture = Image.fromarray((flat * 255).round().astype(np.uint8))
    # area averaging: a thick stroke becomes grey levels without ringing (digits were made so)
    raw = _resized(dataset, picture, resample=Image.Resampling.BOX)
    if light_paper != (_typical_brightness(dataset) >= 0.5):
        raw = 1 - raw
    return dataset.normalize(raw)


def _require_images(dataset: Any) -> None:
    if getattr(dataset, "modality", None) != "image":
        raise ExplainError(f"{dataset.name!r} is not an image dataset; pick one of its samples")


def _resized(dataset: Any, picture: Any, *, resample: int | None = None) -> Tensor:
    """A PIL picture -> raw (C, H, W) values in [0, 1] at the dataset's size and colours."""
    channels, height, width = dataset.sample_shape
    picture = picture.convert("L" if channels == 1 else "RGB").resize((width, height), resample)
    raw = torch.tensor(np.asarray(picture, dtype=np.float32) / 255.0)
    return raw.unsqueeze(0) if channels == 1 else raw.permute(2, 0, 1)  # (C, H, W)


def _typical_brightness(dataset: Any) -> float:
    """Mean raw brightness of the training pictures (digits: about 0.3, dark paper)."""
    return float(dataset.denormalize(dataset.train.x[:256]).mean())


def sentence_sample(dataset: Any, sentence: str) -> Tensor:
    """A sentence a person typed as one sample of a text dataset: its words as the dataset's
    token ids (unknown words -> <unk>), cut or padded to the dataset's length."""
    from core.data.text import encode, tokenize

    if getattr(dataset, "modality", None) != "text" or not dataset.vocabulary:
        raise ExplainError(f"{dataset.name!r} is not a text dataset; pick one of its samples")
    tokens = tokenize(sentence)
    if not tokens:
        raise ExplainError("the sentence has no words; type a few words to explain")
    ids = encode([tokens], dataset.vocabulary, max_length=int(dataset.sample_shape[0]))
    return torch.from_numpy(ids[0])


def row_sample(dataset: Any, row: dict[str, float]) -> Tensor:
    """A table row a person edited ({column: value}, raw units) as one normalized sample."""
    names = list(getattr(dataset, "feature_names", None) or [])
    if getattr(dataset, "modality", None) != "tabular" or not names:
        raise ExplainError(f"{dataset.name!r} is not a table; pick one of its samples")
    missing = [name for name in names if name not in row]
    if missing:
        raise ExplainError(f"the row has no value for {', '.join(missing)}; fill every column")
    try:
        values = [float(row[name]) for name in names]
    except (TypeError, ValueError) as error:
        raise ExplainError(f"every column of the row must be a number: {error}") from None
    if not all(np.isfinite(values)):
        raise ExplainError("every column of the row must be a finite number")
    return dataset.normalize(torch.tensor(values, dtype=torch.float32))
