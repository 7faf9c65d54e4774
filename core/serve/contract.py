"""The input contract: what turns a raw input into the model's input and its output into labels.

`build_contract(run_id)` writes down, as plain JSON, every fact the studio used to prepare a
sample of the run's dataset: the kind of input, its shape and dtype, the raw scale of pixels,
the normalization statistics of the train split, CSV column names, the vocabulary and the
tokenizer's settings, the class names or the regression target's statistics. The standalone
server (`core/serve/standalone.py`) reads nothing else, so a bundle answers exactly as the
studio did without importing the studio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.data.builtin import DIGITS_RAW_MAX
from core.data.text import PAD_ID, TOKEN_PATTERN, UNK_ID
from core.facts import input_dtype_name

if TYPE_CHECKING:
    from core.data import Dataset

CONTRACT_FORMAT = 1  # bump when a key changes meaning; standalone.py refuses other formats
TOP_K = 3  # probabilities returned per prediction
PIXEL_MAX = 255.0  # raw pixel values of image files and torchvision datasets
RAW_IMAGE_MAX = {"digits": DIGITS_RAW_MAX}  # datasets whose images are not 0..255
LUMA = (0.299, 0.587, 0.114)  # RGB -> gray as core.data.images does for 1-channel uploads


def build_contract(run_id: int) -> dict[str, Any]:
    """The contract of a saved run: its dataset loaded once, nothing of the model needed."""
    from core.data import load_dataset
    from core.runs.reading import get_run

    run = get_run(run_id)
    dataset = load_dataset(run.dataset)
    return contract_for(dataset, run_id=run.id, model_name=run.spec.get("name") or run.spec_name)


def contract_for(
    dataset: Dataset, *, run_id: int | None = None, model_name: str | None = None
) -> dict[str, Any]:
    """The contract of a model trained on `dataset` (pure: the dataset's own facts)."""
    return {
        "format": CONTRACT_FORMAT,
        "run_id": run_id,
        "model_name": model_name or "model",
        "dataset": dataset.name,
        "task": dataset.task,
        "kind": dataset.modality,
        "shape": list(dataset.sample_shape),
        "dtype": input_dtype_name(dataset.modality),
        "class_names": list(dataset.class_names),
        "input": _input_facts(dataset),
        "output": _output_facts(dataset),
        "example": raw_sample(dataset, "test", 0) if len(dataset.test) else None,
    }


def _input_facts(dataset: Dataset) -> dict[str, Any]:
    statistics = dataset.normalization.to_dict()
    shape = dataset.sample_shape
    if dataset.modality == "image":
        channels, height, width = shape
        raw_max = raw_image_max(dataset)
        return {
            **statistics,
            "channels": channels,
            "height": height,
            "width": width,
            "raw_max": raw_max,
            "raw": f"pixel values 0 to {raw_max:g}, shaped {list(shape)}"
            + (f" or [{height}, {width}]" if channels == 1 else f" or [{height}, {width}, 3]"),
            "file": {"resize": "bilinear", "gray": list(LUMA), "pixel_max": PIXEL_MAX},
        }
    if dataset.modality == "signal":
        channels, length = shape
        return {
            **statistics,
            "channels": channels,
            "length": length,
            "raw": f"a list of {length} numbers"
            + (f" per channel, shaped [{channels}, {length}]" if channels > 1 else ""),
        }
    if dataset.modality == "tabular":
        columns = list(dataset.feature_names or [f"feature_{i}" for i in range(shape[0])])
        return {
            **statistics,
            "columns": columns,
            "raw": "an object keyed by column name: " + ", ".join(columns),
        }
    vocabulary = list(dataset.vocabulary or [])
    return {
        "vocabulary": vocabulary,
        "vocab_size": len(vocabulary),
        "max_length": shape[0],
        "lowercase": True,
        "token_pattern": TOKEN_PATTERN.pattern,
        "pad_id": PAD_ID,
        "unk_id": UNK_ID,
        "raw": f"a string; lowercased words, the first {shape[0]} kept",
    }


def _output_facts(dataset: Dataset) -> dict[str, Any]:
    if dataset.task == "classification":
        return {"kind": "classes", "top_k": min(TOP_K, len(dataset.class_names))}
    target = dataset.target_normalization
    return {
        "kind": "value",
        "target": dataset.target_name or "target",
        "mean": float(target.mean.reshape(-1)[0]) if target is not None else 0.0,
        "std": float(target.std.reshape(-1)[0]) if target is not None else 1.0,
    }


def raw_image_max(dataset: Dataset) -> float:
    """The largest raw pixel value of an image dataset (16 for digits, else 255)."""
    return float(RAW_IMAGE_MAX.get(dataset.name, PIXEL_MAX))


def raw_sample(dataset: Dataset, split: str, index: int) -> Any:
    """One sample of a split in the form a person has it (the JSON `/predict` takes):
    an image as nested lists of raw pixel values, a signal as numbers, a row as
    {column: value}, a text as words (unknown ones as <unk>)."""
    x = getattr(dataset, split).x[index]
    if dataset.modality == "image":
        pixels = (dataset.denormalize(x).clamp(0, 1) * raw_image_max(dataset)).round()
        return pixels.to(int).tolist()
    if dataset.modality == "signal":
        values = dataset.denormalize(x)
        return (
            [round(float(v), 6) for v in values.flatten()]
            if values.shape[0] == 1
            else [[round(float(v), 6) for v in row] for row in values]
        )
    if dataset.modality == "tabular":
        return {name: round(value, 6) for name, value in dataset.human(x).items()}
    return dataset.human(x)
