"""compress_run on a trained run: the fine-tune is a child run starting from the pruned
weights, int8 is an ONNX file evaluated on the test split and servable, the table's figures
are measured, and bad requests are refused before anything is written."""

from __future__ import annotations

import json

import pytest

from core import runs
from core.compress import CompressOptions, compare_with_parent, compress_run
from core.compress.measure import FIELDS
from core.config import get_settings
from core.errors import CompressError, NotFoundError
from tests.specs import NARROW_DIGITS_CNN

FAST = {"steps": 12, "batch_size": 64, "device": "cpu", "log_every": 6}
QUICK = {"samples": 6, "repeats": 2}


@pytest.fixture(scope="module")
def parent() -> int:
    result = runs.train_run_foreground(spec=NARROW_DIGITS_CNN, dataset="digits", config=FAST)
    assert result["status"] == "completed", result["error"]
    return result["run_id"]


def test_structured_pruning_queues_a_fine_tune_that_records_its_parent(parent):
    report = compress_run(parent, CompressOptions(prune=0.5, finetune_epochs=1, **QUICK))
    document = report.to_json()
    assert {"run_id", "parent_run_id", "before", "after", "attribution_agreement"} <= set(document)
    for column in ("before", "after"):
        assert set(FIELDS) <= set(document[column])
        assert set(document[column]["latency_ms"]) == {"batch_1", "batch_64"}
    assert document["after"]["flops"] < 0.5 * document["before"]["flops"]
    assert document["after"]["params"] < document["before"]["params"]
    assert 0 <= document["after"]["test_accuracy"] <= 1
    agreement = document["attribution_agreement"]
    assert agreement["samples"] == 6 and 0 <= agreement["agreeing"] <= 6
    assert "of 6 test digits" in agreement["sentence"]
    # the child run: queued with the pruned spec, the parent's settings and the weights file
    child = runs.get_run(document["run_id"])
    assert child.status == "queued" and child.parent_run_id == parent
    assert child.origin["kind"] == "compress" and child.origin["from_run"] == parent
    assert child.spec["layers"][0]["out_channels"] == 4
    assert child.settings["epochs"] == 1 and child.settings["batch_size"] == 64
    from core.builder import build_model
    from core.data import describe_dataset
    from core.train.transfer import initial_state

    model = build_model(child.spec, describe_dataset("digits").facts)
    initial_state(child.origin, model)  # every name and shape fits, or it raises
    # the folder is a serving folder whose spec opens in Build
    folder = report.folder
    assert folder.is_relative_to(get_settings().compressed_dir)
    assert json.loads((folder / "spec.json").read_text())["layers"][0]["out_channels"] == 4
    assert (folder / "contract.json").is_file() and (folder / "weights.safetensors").is_file()
    with pytest.raises(CompressError, match="not made by compression"):
        compare_with_parent(parent)


def test_a_foreground_fine_tune_starts_from_the_pruned_weights_and_is_measured(parent):
    report = compress_run(
        parent, CompressOptions(prune=0.5, finetune_epochs=1, foreground=True, **QUICK)
    )
    child = runs.get_run(report.run_id)
    assert child.status == "completed" and child.parent_run_id == parent
    init = child.result["init"]
    assert init["weights"].endswith("pruned.safetensors") and not init["skipped"]
    assert report.finetune == {"run_id": child.id, "status": "completed", "epochs": 1}
    # the table's after column is the fine-tuned model: its accuracy is the run's own
    accuracy = child.result["metrics"]["test_accuracy"]
    assert report.after.test_accuracy == pytest.approx(accuracy, abs=1e-6)
    assert "fine-tuned model relies" in report.attribution_agreement.sentence


def test_int8_is_an_onnx_file_measured_on_the_test_split_and_servable(parent):
    report = compress_run(parent, CompressOptions(int8=True, **QUICK))
    before, after = report.before, report.after
    assert before.runtime == after.runtime == "onnxruntime"
    assert after.bytes < 0.5 * before.bytes
    assert abs(after.test_accuracy - before.test_accuracy) < 0.05
    assert report.int8["dynamic"]  # the linear layers hold int8 weights
    from fastapi.testclient import TestClient

    from core.serve.server import create_studio_app

    app = create_studio_app(str(report.folder))  # what `studio serve FOLDER` runs
    example = json.loads((report.folder / "contract.json").read_text())["example"]
    with TestClient(app) as client:
        answer = client.post("/predict", json={"inputs": [example]})
    assert answer.status_code == 200, answer.text
    prediction = answer.json()["predictions"][0]
    assert prediction["label"] in [str(digit) for digit in range(10)]
    assert 0 < sum(prediction["probabilities"].values()) <= 1 + 1e-6


def test_unstructured_zeroes_the_share_asked_and_says_it_is_not_faster(parent):
    report = compress_run(parent, CompressOptions(prune=0.6, method="unstructured", **QUICK))
    assert report.after.params == report.before.params
    assert report.after.nonzero_params < 0.5 * report.before.nonzero_params
    assert report.pruning["sparsity"] == pytest.approx(0.6, abs=1e-3)
    assert any("no faster on a CPU" in note for note in report.notes)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (CompressOptions(prune=1.0), "outside"),
        (CompressOptions(prune=0), "outside"),
        (CompressOptions(), "nothing to do"),
        (CompressOptions(prune=0.5, method="unstructured", finetune_epochs=2), "masks"),
        (CompressOptions(prune=0.5, finetune_epochs=2, int8=True), "--foreground"),
        (CompressOptions(int8=True, finetune_epochs=1), "follows pruning"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_written(parent, options, words):
    made = folders()
    with pytest.raises(CompressError, match=words):
        compress_run(parent, options)
    assert folders() == made


def test_a_run_without_a_checkpoint_is_refused(parent):
    run_id = runs.submit_run(spec=NARROW_DIGITS_CNN, dataset="digits", config=FAST)
    made = folders()
    with pytest.raises(NotFoundError, match=f"run {run_id} .* has no checkpoint"):
        compress_run(run_id, CompressOptions(prune=0.5))
    assert folders() == made
    runs.request_stop(run_id)  # no worker will ever take it; leave the queue as found


def folders() -> set[str]:
    root = get_settings().compressed_dir
    return {str(p) for p in root.rglob("*")} if root.exists() else set()
