"""A bundle explains on a machine without the run's dataset: `studio serve BUNDLE` answers
/explain from the bundle's contract and stored Gradient SHAP baselines exactly as the machine
that had the dataset did; a bundle written before the baselines were stored says how to fix it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from core import runs
from core.builder import build_model
from core.data import load_dataset, register_upload
from core.explain import explain
from core.export import export_run
from core.serve.contract import contract_for
from core.serve.explain_data import (
    BASELINES_FILE,
    BundleDataset,
    bundle_dataset,
    write_baselines,
)
from core.serve.server import create_studio_app
from tests.core.serve.conftest import FAST, TEXT_MODEL, write_reviews, write_table
from tests.specs import TINY_MLP

METHODS = ("integrated_gradients", "gradient_shap")


@dataclass(frozen=True)
class Exported:
    """A bundle of a run on an uploaded table, and what /explain said where the upload was."""

    bundle: Path
    sample: dict  # one raw row, as /explain takes it
    answers: dict[str, dict]  # method -> the /explain document on machine A


def _explain(bundle: Path, sample: dict, method: str) -> tuple[int, dict, object]:
    app = create_studio_app(bundle, runtime="torch")
    response = TestClient(app).post(
        "/explain", json={"input": sample, "method": method, "steps": 16}
    )
    return response.status_code, response.json(), app.state.explainer.dataset


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """Machine A: a CSV uploaded, a run trained on it, exported as a bundle and explained."""
    home = tmp_path_factory.mktemp("machine_a")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        patch.setenv("STUDIO_DATABASE_URL", f"sqlite:///{home / 'studio.db'}")
        register_upload("csv", write_table(home / "people.csv"), name="people")
        result = runs.train_run_foreground(spec=TINY_MLP, dataset="people", config=FAST)
        assert result["status"] == "completed", result
        bundle = export_run(result["run_id"], "bundle", home / "bundle").path
        sample = {"height cm": 181.5, "weight": 92.0, "age": 61}
        answers = {}
        for method in METHODS:
            status, document, dataset = _explain(bundle, sample, method)
            assert status == 200, document
            assert not isinstance(dataset, BundleDataset)  # machine A loads the upload
            answers[method] = document
    return Exported(bundle=bundle, sample=sample, answers=answers)


@pytest.mark.parametrize("method", METHODS)
def test_a_bundle_explains_alike_on_a_machine_without_the_dataset(exported, method):
    # the autouse fixture's STUDIO_HOME is a fresh, empty one: machine B never saw "people"
    with pytest.raises(Exception, match="people"):
        load_dataset("people")
    status, document, dataset = _explain(exported.bundle, exported.sample, method)
    assert status == 200, document
    assert isinstance(dataset, BundleDataset)
    expected = exported.answers[method]
    np.testing.assert_allclose(document["attribution"], expected["attribution"], atol=1e-6)
    for key in ("prediction", "probabilities", "summary", "warnings", "target", "effect"):
        assert document[key] == expected[key], key  # same model, same input: same numbers


def test_another_upload_of_the_same_name_is_not_taken_for_the_runs(exported, tmp_path):
    other = tmp_path / "other.csv"
    rows = [f"{150 + i},{50 + i},{20 + i},{'xy'[i % 2]}" for i in range(30)]
    other.write_text("height cm,weight,age,label\n" + "\n".join(rows) + "\n")
    register_upload("csv", other, name="people")
    status, document, dataset = _explain(exported.bundle, exported.sample, "gradient_shap")
    assert status == 200, document
    assert isinstance(dataset, BundleDataset)
    expected = exported.answers["gradient_shap"]
    np.testing.assert_allclose(document["attribution"], expected["attribution"], atol=1e-6)
    assert document["prediction"] == expected["prediction"]


def test_a_bundle_without_stored_baselines_names_the_fix_for_gradient_shap(exported, tmp_path):
    old = shutil.copytree(exported.bundle, tmp_path / "old-bundle")
    (old / BASELINES_FILE).unlink()
    status, document, _ = _explain(old, exported.sample, "integrated_gradients")
    assert status == 200, document
    np.testing.assert_allclose(
        document["attribution"], exported.answers["integrated_gradients"]["attribution"], atol=1e-6
    )
    status, document, _ = _explain(old, exported.sample, "gradient_shap")
    assert status == 503 and document["field"] == "method"
    assert BASELINES_FILE in document["detail"]
    assert "studio export RUN_ID --format bundle" in document["detail"]


STANDIN_CASES = {  # dataset -> (spec, methods)
    "digits": (TINY_MLP, ("integrated_gradients", "gradient_shap", "occlusion")),
    "text": (TEXT_MODEL, ("integrated_gradients", "saliency")),
}


@pytest.mark.parametrize("kind", STANDIN_CASES)
def test_the_stand_in_explains_as_the_real_dataset_does(kind, tmp_path):
    name = (
        "digits" if kind == "digits" else f"text:{write_reviews(tmp_path / 'r.csv')}?max_length=6"
    )
    real = load_dataset(name)
    write_baselines(tmp_path, real)
    standin = bundle_dataset(tmp_path, contract_for(real))
    spec, methods = STANDIN_CASES[kind]
    torch.manual_seed(0)
    model = build_model(spec, real.facts).eval()
    x = real.test.x[3]
    for method in methods:
        expected = explain(model, x, method=method, dataset=real, n_steps=16).to_dict()
        document = explain(model, x, method=method, dataset=standin, n_steps=16).to_dict()
        np.testing.assert_allclose(document["attribution"], expected["attribution"], atol=1e-6)
        for key in ("summary", "tokens", "randomization_correlation", "effect"):
            assert document[key] == expected[key], (method, key)
