"""The bundle's model card (README.md): what the model is, what it was trained on and how,
how well it did, what it relies on, and how to serve it. Pure: facts in, Markdown out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from core.export.parity import TOLERANCE


@dataclass(frozen=True)
class Example:
    """One explained test sample for the card."""

    index: int  # position in the test split
    label: str  # the true class
    prediction: str
    probability: float
    sentence: str  # core.explain's summary
    picture: str  # file name relative to the bundle
    method: str


@dataclass(frozen=True)
class CardFacts:
    run_id: int
    model_name: str
    status: str
    dataset: dict[str, Any]  # DatasetInfo.to_dict()
    normalization: dict[str, list[float]]
    trace: dict[str, Any]  # Trace.to_dict(): layers, params, flops
    settings: dict[str, Any]  # TrainConfig.to_dict()
    metrics: dict[str, float]  # the run's final metrics
    onnx_max_abs_diff: float
    checked_samples: int
    files: dict[str, int]  # file name -> bytes
    versions: dict[str, str]  # library -> version the bundle was made with
    confusion_picture: str | None = None
    confusion_note: str | None = None
    examples: list[Example] = field(default_factory=list)
    epochs: int | None = None
    steps: int | None = None


def model_card(facts: CardFacts) -> str:
    """The README.md of a bundle."""
    sections = [
        _header(facts),
        _serve(facts),
        _architecture(facts),
        _data(facts),
        _training(facts),
        _results(facts),
        _examples(facts),
        _files(facts),
    ]
    return "\n\n".join(s for s in sections if s).rstrip() + "\n"


def _header(facts: CardFacts) -> str:
    data = facts.dataset
    return (
        f"# {facts.model_name} — run {facts.run_id}\n\n"
        f"A {data['task']} model for `{data['name']}` ({data['modality']} input shaped "
        f"{data['sample_shape']}, {_outputs(data)}), trained in Model Studio and exported with "
        f"its preprocessing. {_count(facts.trace['params'])} parameters, "
        f"{_count(facts.trace['flops'])} FLOPs per sample (forward pass). Run status: "
        f"{facts.status}.\n\n"
        f"**Verified:** `model.onnx` was run with onnxruntime on {facts.checked_samples} real "
        f"test samples at batch 1 and batch {facts.checked_samples}; its largest absolute "
        f"difference from the studio's model is {facts.onnx_max_abs_diff:.3g} "
        f"(the limit is {TOLERANCE:g})."
    )


def _outputs(data: dict[str, Any]) -> str:
    if data["task"] == "classification":
        return f"{data['num_classes']} classes"
    return "one number out"


def _serve(facts: CardFacts) -> str:
    return (
        "## Serve it\n\n"
        "```\n"
        "pip install numpy fastapi uvicorn onnxruntime pillow\n"
        "python serve.py            # http://127.0.0.1:8000/docs\n"
        "curl http://127.0.0.1:8000/metadata\n"
        "```\n\n"
        "`serve.py` imports nothing from Model Studio: it reads `contract.json` (input kind, "
        "shape, dtype, normalization statistics, class names, vocabulary and tokenizer "
        'settings, CSV columns) and answers `POST /predict` with `{"inputs": [sample, ...]}` '
        "where a sample is raw, as a person has it. `GET /metadata` shows an example sample. "
        "Where Model Studio is installed, `studio serve .` also answers `POST /explain`, on a "
        "machine without the run's dataset too: `explain_baselines.safetensors` holds the "
        "training samples Gradient SHAP compares with (images, signals and tables)."
    )


def _architecture(facts: CardFacts) -> str:
    rows = [
        "| # | layer | type | output shape | parameters | FLOPs |",
        "|---|---|---|---|---:|---:|",
    ]
    for layer in facts.trace["layers"]:
        rows.append(
            f"| {layer['index']} | {_cell(layer['name'])} | {layer['type']} | "
            f"{layer['output_shape']} | {layer['params']:,} | {layer['flops']:,} |"
        )
    rows.append(
        f"| | **total** | | | **{facts.trace['params']:,}** | **{facts.trace['flops']:,}** |"
    )
    return (
        "## Architecture\n\n"
        f"Input {facts.dataset['sample_shape']} ({_dtype(facts.dataset)}). Shapes exclude the "
        "batch dimension; FLOPs are per sample, counted by `torch.utils.flop_counter` on the "
        "studio's trace. `spec.json` is the model-spec document; `model.safetensors` holds its "
        "weights by layer name.\n\n" + "\n".join(rows)
    )


def _dtype(data: dict[str, Any]) -> str:
    return "int64 token ids" if data["modality"] == "text" else "float32, normalized"


def _data(facts: CardFacts) -> str:
    data, sizes = facts.dataset, facts.dataset["sizes"]
    lines = [
        "## Data",
        "",
        f"`{data['name']}` ({data['source']}): {data.get('description') or data['modality']}".rstrip(),
        "",
        f"Splits: {sizes.get('train', 0):,} train, {sizes.get('val', 0):,} validation, "
        f"{sizes.get('test', 0):,} test. Validation is carved from train with a fixed seed "
        "unless the dataset has its own; test is the dataset's own test split and was not "
        "used for training or model selection.",
    ]
    if data["task"] == "classification":
        lines += ["", "Classes: " + ", ".join(f"`{name}`" for name in data["class_names"]) + "."]
    if data["modality"] != "text" and facts.normalization.get("mean"):
        lines += [
            "",
            "Normalization (train statistics, applied by `serve.py`): mean "
            f"{_numbers(facts.normalization['mean'])}, std {_numbers(facts.normalization['std'])}.",
        ]
    return "\n".join(lines)


def _training(facts: CardFacts) -> str:
    shown = {k: v for k, v in facts.settings.items() if v is not None and v is not False}
    rows = ["| setting | value |", "|---|---|"] + [
        f"| {key} | {_cell(str(value))} |" for key, value in shown.items()
    ]
    length = []
    if facts.epochs is not None:
        length.append(f"{facts.epochs} epoch{'s' if facts.epochs != 1 else ''}")
    if facts.steps is not None:
        length.append(f"{facts.steps:,} steps")
    trained = f"Trained for {', '.join(length)}. " if length else ""
    return "## Training\n\n" + trained + "Settings as recorded with the run:\n\n" + "\n".join(rows)


def _results(facts: CardFacts) -> str:
    rows = ["| metric | value |", "|---|---:|"] + [
        f"| {name} | {value:.4g} |"
        for name, value in facts.metrics.items()
        if isinstance(value, int | float) and name != "lr"
    ]
    parts = ["## Results\n\nFinal metrics of the run:\n\n" + "\n".join(rows)]
    if facts.confusion_picture:
        parts.append(
            "Confusion matrix on the test split (rows: true class, columns: predicted):\n\n"
            f"![confusion matrix]({facts.confusion_picture})"
        )
    elif facts.confusion_note:
        parts.append(facts.confusion_note)
    return "\n\n".join(parts)


def _examples(facts: CardFacts) -> str:
    if not facts.examples:
        return ""
    parts = [
        "## What it relies on\n\n"
        f"{len(facts.examples)} test samples explained with "
        f"{facts.examples[0].method.replace('_', ' ')} (Captum). Each sentence was measured on "
        "the model: hiding what it relied on and reading its answer again."
    ]
    for example in facts.examples:
        verdict = (
            "right" if example.label == example.prediction else f"wrong (it is {example.label})"
        )
        parts.append(
            f"**Test sample {example.index}** — predicted {example.prediction} "
            f"({example.probability:.0%}), {verdict}.\n\n"
            f"![explanation of test sample {example.index}]({example.picture})\n\n"
            f"> {example.sentence}"
        )
    return "\n\n".join(parts)


def _files(facts: CardFacts) -> str:
    rows = ["| file | bytes |", "|---|---:|"] + [
        f"| `{name}` | {size:,} |" for name, size in sorted(facts.files.items())
    ]
    made = ", ".join(f"{name} {version}" for name, version in facts.versions.items())
    return "## Files\n\n" + "\n".join(rows) + f"\n\nMade with {made}."


def _count(value: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.3g}{unit}"
    return str(value)


def _numbers(values: list[float], limit: int = 8) -> str:
    shown = ", ".join(f"{v:.4g}" for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
