"""The bundle: a folder a person copies to another machine and serves with `python serve.py`.

model.onnx (checked), model.safetensors (the weights by layer name), spec.json (the model-spec
document), contract.json (everything that turns a raw input into the model's input and its
output into labels: `core.serve.contract.build_contract`), explain_baselines.safetensors
(classifiers of images, signals and tables: the training samples `studio serve`'s Gradient
SHAP draws, so the bundle explains without the dataset), serve.py (a verbatim copy of
core/serve/standalone.py) and README.md, the model card, with its pictures under figures/.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from core.export.card import CardFacts, Example, model_card
from core.export.figures import confusion_png, explanation_png
from core.export.onnx import export_onnx
from core.serve.explain_data import write_baselines

if TYPE_CHECKING:
    from core.data import Dataset
    from core.runs.views import RunView

BUNDLE_STEPS = 5  # onnx, files, confusion matrix, explanations, card (export_run's progress)
EXAMPLES = 3  # explained test samples on the card
EXPLAIN_METHOD = "integrated_gradients"  # works for every modality, text included
FIGURES = "figures"
STANDALONE = Path(__file__).resolve().parents[1] / "serve" / "standalone.py"


def write_bundle(
    folder: Path,
    *,
    model: nn.Module,
    dataset: Dataset,
    run: RunView,
    samples: torch.Tensor,
    program: torch.export.ExportedProgram | None = None,
    step: Callable[[str], None] = lambda _note: None,
) -> float:
    """Write the bundle of a run's model into `folder` (created); returns the ONNX file's
    largest absolute difference from the model on `samples`."""
    folder.mkdir(parents=True)
    (folder / FIGURES).mkdir()
    step("writing model.onnx and checking it with onnxruntime")
    diff = export_onnx(model, dataset.facts, folder / "model.onnx", samples, program=program)

    step("writing the weights, spec, contract and serve.py")
    _write_files(folder, model=model, run=run)
    write_baselines(folder, dataset)  # /explain's gradient_shap where the dataset is not

    step("drawing the confusion matrix")
    confusion, note = _confusion(folder, run, dataset)

    step("explaining example predictions")
    examples = _examples(folder, model, dataset)

    step("writing the model card")
    card = _card_facts(
        folder,
        run=run,
        dataset=dataset,
        diff=diff,
        checked=len(samples),
        confusion=confusion,
        note=note,
        examples=examples,
    )
    (folder / "README.md").write_text(model_card(card), encoding="utf-8")
    return diff


def _write_files(folder: Path, *, model: nn.Module, run: RunView) -> None:
    from safetensors.torch import save_file

    from core.serve.contract import build_contract

    # clones: safetensors refuses tensors that share storage, and a copy costs nothing here
    weights = {
        name: t.detach().cpu().clone().contiguous() for name, t in model.state_dict().items()
    }
    save_file(weights, str(folder / "model.safetensors"), metadata={"run_id": str(run.id)})
    spec = getattr(model, "spec", None) or run.spec
    (folder / "spec.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    contract = build_contract(run.id)
    (folder / "contract.json").write_text(json.dumps(contract, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(STANDALONE, folder / "serve.py")


def _confusion(folder: Path, run: RunView, dataset: Dataset) -> tuple[str | None, str | None]:
    if dataset.task != "classification":
        return None, "A regression model has no confusion matrix; see the metrics above."
    matrix = run.confusion_matrix
    if not matrix:
        return None, run.result.get("confusion_note") or "No confusion matrix was recorded."
    name = f"{FIGURES}/confusion_matrix.png"
    confusion_png(matrix, list(dataset.class_names), folder / name)
    return name, None


def pick_examples(predicted: list[int], labels: list[int], count: int = EXAMPLES) -> list[int]:
    """Test samples worth showing: right answers of different classes first, then the first
    mistake (people learn most from one), up to `count`."""
    right, seen = [], set()
    for index, (guess, label) in enumerate(zip(predicted, labels, strict=True)):
        if guess == label and guess not in seen:
            right.append(index)
            seen.add(guess)
        if len(right) >= count - 1:
            break
    wrong = next(
        (i for i, (g, y) in enumerate(zip(predicted, labels, strict=True)) if g != y), None
    )
    chosen = right + ([wrong] if wrong is not None else [])
    extra = [i for i in range(len(labels)) if i not in chosen]
    return (chosen + extra)[:count]


def _examples(folder: Path, model: nn.Module, dataset: Dataset) -> list[Example]:
    if dataset.task != "classification" or len(dataset.test) == 0:
        return []
    from core.explain import explain, position_scores

    test = dataset.test
    with torch.no_grad():
        predicted = model(test.x[:256]).argmax(dim=1).tolist()
    examples = []
    for index in pick_examples(predicted, test.y[: len(predicted)].tolist()):
        x, label = test.x[index], int(test.y[index])
        explanation = explain(
            model, x, method=EXPLAIN_METHOD, dataset=dataset, label=label, sanity_check=False
        )
        name = f"{FIGURES}/example-{index}.png"
        explanation_png(
            modality=explanation.modality,
            human=dataset.human(x),
            scores=position_scores(explanation.attribution, explanation.modality).numpy(),
            title=f"test sample {index}: predicted {explanation.prediction.label}, "
            f"true {dataset.class_names[label]}",
            tokens=explanation.tokens,
            path=folder / name,
        )
        examples.append(
            Example(
                index=index,
                label=dataset.class_names[label],
                prediction=explanation.prediction.label,
                probability=explanation.prediction.probability,
                sentence=explanation.summary,
                picture=name,
                method=EXPLAIN_METHOD,
            )
        )
    return examples


def _card_facts(
    folder: Path,
    *,
    run: RunView,
    dataset: Dataset,
    diff: float,
    checked: int,
    confusion: str | None,
    note: str | None,
    examples: list[Example],
) -> CardFacts:
    from core.builder import trace

    traced = trace(run.spec, dataset.facts, finished=True)
    files = {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    files["README.md"] = 0  # this file; its size is known only once written
    return CardFacts(
        run_id=run.id,
        model_name=run.spec.get("name") or run.spec_name or "model",
        status=str(run.status),
        dataset=dataset.info().to_dict(),
        normalization=dataset.normalization.to_dict(),
        trace=traced.to_dict(),
        settings=dict(run.settings),
        metrics=dict(run.result.get("metrics") or {}),
        onnx_max_abs_diff=diff,
        checked_samples=checked,
        files={k: v for k, v in files.items() if k != "README.md"},
        versions=_versions(),
        confusion_picture=confusion,
        confusion_note=note,
        examples=examples,
        epochs=run.result.get("epochs"),
        steps=run.result.get("steps"),
    )


def _versions() -> dict[str, Any]:
    import onnxruntime

    return {"torch": torch.__version__.split("+")[0], "onnxruntime": onnxruntime.__version__}
