"""Every template exports to ONNX and to torch.export and answers as the studio's model does on
real samples of its own dataset (batch 1 and 64), text and recurrent models included.

Nothing is trained: parity is about the export, and a freshly initialised model with the real
dataset's samples checks it as well as a trained one. Datasets are loaded once per module;
each model is captured once and that program is written both ways (as `export_run` does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from core.builder import build_model
from core.data import load_dataset
from core.export.onnx import export_onnx, onnx_session, run_session
from core.export.parity import PARITY_BATCH, TOLERANCE, example_batch, parity_samples
from core.export.program import capture
from core.export.pt2 import export_pt2
from core.templates import list_templates
from tests.core.data.conftest import write_cifar_files, write_csv

# Embedding -> LSTM -> last step: token ids in (int64), the recurrent path the templates lack
TEXT_LSTM = {
    "name": "text-lstm",
    "layers": [
        {"type": "Embedding", "embedding_dim": 16},
        {"type": "LSTM", "hidden_size": 16},
        {"type": "SequencePool", "mode": "last"},
        {"type": "Linear"},
    ],
}
CASES = [(t.name, t.spec, t.dataset) for t in list_templates()] + [("text-lstm", TEXT_LSTM, "text")]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every dataset the cases need, loaded once: digits and mnist1d as shipped, cifar10 from
    small files in its real format, and a text upload (reviews, 12 tokens each)."""
    home = tmp_path_factory.mktemp("export_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        patch.setenv("STUDIO_DATABASE_URL", f"sqlite:///{home / 'studio.db'}")
        from core.data import vision

        write_cifar_files(vision.files_folder(vision.SOURCES["cifar10"]), per_batch=20, n_test=80)
        rows = [
            [
                f"{'a lovely warm film' if i % 2 else 'a dull boring film'} number {i}",
                ("neg", "pos")[i % 2],
            ]
            for i in range(120)
        ]
        reviews = write_csv(home / "reviews.csv", ["review", "sentiment"], rows)
        names = {"digits": "digits", "mnist1d": "mnist1d", "cifar10": "cifar10"}
        names["text"] = f"text:{reviews}?max_length=12"
        return {key: load_dataset(name) for key, name in names.items()}


def test_every_template_is_covered() -> None:
    datasets_needed = {dataset for _, _, dataset in CASES}
    assert datasets_needed == {"digits", "mnist1d", "cifar10", "text"}
    assert len(CASES) == len(list_templates()) + 1


@pytest.mark.parametrize(("name", "spec", "dataset_key"), CASES, ids=[c[0] for c in CASES])
def test_template_exports_and_answers_as_the_studio_model(
    name: str, spec: dict, dataset_key: str, datasets: dict, tmp_path: Path
) -> None:
    dataset = datasets[dataset_key]
    torch.manual_seed(0)
    model = build_model(spec, dataset.facts).eval()
    samples = parity_samples(dataset)
    assert len(samples) == PARITY_BATCH and samples.dtype == dataset.facts.input_dtype
    program = capture(model, example_batch(samples))

    onnx_diff = export_onnx(model, dataset.facts, tmp_path / "model.onnx", samples, program=program)
    pt2_diff = export_pt2(model, dataset.facts, tmp_path / "model.pt2", samples, program=program)

    assert 0 <= onnx_diff < TOLERANCE and 0 <= pt2_diff < TOLERANCE
    # the batch dimension is a symbol, so any batch size runs: here 3, which was never checked
    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    batch_dim = graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    three = samples[5:8]
    with torch.no_grad():
        expected = model(three).numpy()
    answered = run_session(onnx_session(tmp_path / "model.onnx"), three)
    assert answered.shape == (3, dataset.num_classes)
    np.testing.assert_allclose(answered, expected, atol=TOLERANCE, rtol=0)
    loaded = torch.export.load(str(tmp_path / "model.pt2")).module()
    np.testing.assert_allclose(loaded(three).detach().numpy(), expected, atol=TOLERANCE, rtol=0)
