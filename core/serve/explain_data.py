"""What explanations read of a run's dataset, carried by a bundle so it explains anywhere.

`core.explain.explain` reads a dataset for the model's facts, class names, the "nothing
there" baseline (`normalize` of a blank image or signal, the pad token of the vocabulary),
column names and words for the summary, and Gradient SHAP's baseline distribution: a few
training samples. The bundle's contract.json holds all of it but those samples, so the bundle
writer stores them too (`write_baselines`, the very rows `explain` draws with seed 0) and
`bundle_dataset` rebuilds a `Dataset` from the two files: the same explanation as with the
run's dataset, on a machine that cannot load that dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.data.dataset import Dataset, Normalization, Split
from core.errors import StudioError
from core.facts import input_dtype_for

BASELINES_FILE = "explain_baselines.safetensors"
BASELINES_KEY = "x"
BASELINES_SEED = 0  # the seed `explain` uses unless told otherwise (the server never tells it)
DESCRIBING_KEYS = ("dataset", "task", "kind", "shape", "class_names", "input", "output")
REEXPORT_HINT = "re-export the bundle with `studio export RUN_ID --format bundle`"


class BaselinesError(StudioError):
    """A bundle's explain_baselines.safetensors that does not fit its contract."""


@dataclass(frozen=True)
class BundleDataset(Dataset):
    """A run's dataset as a bundle knows it: no samples of its own, its train split the stored
    Gradient SHAP baselines, which `gradient_shap_baselines` returns as they are."""

    shap_baselines: Tensor | None = None  # None: a bundle written before they were stored


def needs_baselines(task: str, modality: str) -> bool:
    """Gradient SHAP draws training samples for classifiers of images, signals and tables
    (text models have no Gradient SHAP; regression models no explanations)."""
    return task == "classification" and modality != "text"


def write_baselines(folder: Path, dataset: Dataset) -> Path | None:
    """Store the Gradient SHAP baselines `explain` draws from `dataset` (seed 0) in `folder`;
    None when the dataset's models have no Gradient SHAP."""
    from safetensors.torch import save_file

    from core.explain.explanation import gradient_shap_baselines

    if not needs_baselines(dataset.task, dataset.modality) or len(dataset.train) == 0:
        return None
    rows = gradient_shap_baselines(dataset, BASELINES_SEED).detach().cpu().float().contiguous()
    path = folder / BASELINES_FILE
    metadata = {"dataset": dataset.name, "seed": str(BASELINES_SEED), "rows": str(len(rows))}
    save_file({BASELINES_KEY: rows.clone()}, str(path), metadata=metadata)
    return path


def read_baselines(folder: Path, contract: dict[str, Any]) -> Tensor | None:
    """The bundle's stored baselines, checked against the contract's sample shape; None when
    the bundle has none (written before they were stored)."""
    from safetensors.torch import load_file

    path = folder / BASELINES_FILE
    if not path.is_file():
        return None
    try:
        rows = load_file(str(path)).get(BASELINES_KEY)
    except (OSError, ValueError, RuntimeError) as error:
        raise BaselinesError(f"{path} cannot be read ({error}); {REEXPORT_HINT}") from None
    shape = tuple(contract["shape"])
    if rows is None or rows.dim() != len(shape) + 1 or tuple(rows.shape[1:]) != shape:
        found = "no tensor 'x'" if rows is None else f"shape {tuple(rows.shape)}"
        raise BaselinesError(
            f"{path} holds {found}; expected rows shaped (n, {', '.join(map(str, shape))}); "
            f"{REEXPORT_HINT}"
        )
    return rows.float()


def bundle_dataset(folder: Path, contract: dict[str, Any]) -> BundleDataset:
    """The stand-in for the run's dataset built from the bundle's contract.json and
    explain_baselines.safetensors: what `core.explain.explain` reads, nothing more."""
    kind, task = contract["kind"], contract["task"]
    facts = contract["input"]
    shape = tuple(int(s) for s in contract["shape"])
    baselines = read_baselines(folder, contract) if needs_baselines(task, kind) else None
    dtype = input_dtype_for(kind)
    empty = Split(x=torch.zeros((0, *shape), dtype=dtype), y=torch.zeros(0, dtype=torch.int64))
    train = (
        Split(x=baselines, y=torch.zeros(len(baselines), dtype=torch.int64))
        if baselines is not None
        else empty
    )
    output = contract.get("output") or {}
    target = (
        Normalization(torch.tensor([output["mean"]]), torch.tensor([output["std"]]))
        if output.get("kind") == "value"
        else None
    )
    return BundleDataset(
        name=contract["dataset"],
        task=task,
        modality=kind,
        sample_shape=shape,
        class_names=list(contract["class_names"]),
        train=train,
        val=empty,
        test=empty,
        normalization=Normalization(
            torch.tensor(facts.get("mean", [0.0]), dtype=torch.float32),
            torch.tensor(facts.get("std", [1.0]), dtype=torch.float32),
        ),
        vocabulary=list(facts["vocabulary"]) if "vocabulary" in facts else None,
        target_normalization=target,
        feature_names=list(facts["columns"]) if "columns" in facts else None,
        target_name=output.get("target"),
        description=f"{contract['dataset']} as the bundle at {folder} describes it",
        source="bundle",
        shap_baselines=baselines,
    )


def describes(dataset: Dataset, contract: dict[str, Any]) -> bool:
    """Whether `dataset` is the one the contract was written from, as far as explanations
    see it (another machine may hold a different upload under the same name)."""
    from core.serve.contract import contract_for

    mine = contract_for(dataset)
    return all(mine[key] == contract.get(key) for key in DESCRIBING_KEYS)


def missing_baselines(dataset: Any, method: str) -> str | None:
    """Why `method` cannot explain with `dataset` (a stand-in without stored baselines), or
    None when it can."""
    if (
        method != "gradient_shap"
        or not isinstance(dataset, BundleDataset)
        or dataset.shap_baselines is not None
        or not needs_baselines(dataset.task, dataset.modality)
    ):
        return None
    return (
        f"gradient_shap needs training samples of {dataset.name!r} as baselines; this machine "
        f"cannot load that dataset and the bundle has no {BASELINES_FILE} (it was exported "
        f"before bundles stored them): {REEXPORT_HINT}, or use another method"
    )
