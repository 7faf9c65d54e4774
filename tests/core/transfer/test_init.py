"""Starting a run from an earlier run's weights, or from a state-dict file (the worker's hook)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from core import runs
from core.builder import build_model
from core.data import describe_dataset
from core.errors import NotFoundError, TrainingError
from core.facts import ModelFacts
from core.train.transfer import init_origin, initial_state, preview_init
from tests.specs import DIGITS_CNN

FAST = {"epochs": 1, "device": "cpu"}
# the same first convolution, a wider hidden layer, and the last Linear left to the data
CHILD = {
    "name": "digits-cnn-wider",
    "layers": [
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1, "frozen": True},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 32},
        {"type": "ReLU"},
        {"type": "Linear"},
    ],
}


def test_a_child_run_starts_from_its_parent_as_the_preview_said():
    parent = runs.train_run_foreground(spec=DIGITS_CNN, dataset="digits", config=FAST)
    assert parent["status"] == "completed", parent["error"]
    parent_run = parent["run_id"]
    report = preview_init(CHILD, "digits", parent_run)
    assert report.loaded == ["conv1"]
    assert report.new == []
    reasons = {s["name"]: s["reason"] for s in report.skipped}
    assert reasons == {
        "fc1": f"fc1 has 64 outputs in run {parent_run}, 32 here",
        "fc2": f"fc2 reads 64 features in run {parent_run}, 32 here",
    }
    assert "1 block loaded, 2 skipped" in report.sentence()

    result = runs.train_run_foreground(
        spec=CHILD,
        dataset="digits",
        config=FAST,
        parent_run_id=parent_run,
        origin=init_origin(parent_run),
    )
    assert result["status"] == "completed", result["error"]
    assert result["init"] == {
        "from_run": parent_run,
        "loaded": ["conv1"],
        "new": [],
        "skipped": [
            {"name": "fc1", "reason": f"fc1 has 64 outputs in run {parent_run}, 32 here"},
            {"name": "fc2", "reason": f"fc2 reads 64 features in run {parent_run}, 32 here"},
        ],
    }
    parent, _, _ = runs.load_run_model(parent_run)
    child, _, child_view = runs.load_run_model(result["run_id"])
    assert torch.equal(child.conv1.weight, parent.conv1.weight)  # copied, then frozen
    assert torch.equal(child.conv1.bias, parent.conv1.bias)
    assert child_view.parent_run_id == parent_run
    assert [c.id for c in runs.children_of(parent_run)] == [result["run_id"]]

    # a head for another number of classes starts fresh by itself
    model = build_model(DIGITS_CNN, ModelFacts(input_shape=(1, 8, 8), num_classes=2))
    report = initial_state(init_origin(parent_run), model)
    assert report.loaded == ["conv1", "fc1"]
    assert report.skipped == [
        {
            "name": "fc2",
            "reason": f"fc2 has 10 outputs in run {parent_run}, 2 here "
            "(another number of classes: the head starts fresh)",
        }
    ]


def test_a_run_without_checkpoints_or_missing_is_refused_by_name():
    model = build_model(DIGITS_CNN, describe_dataset("digits").facts)
    with pytest.raises(NotFoundError, match="run 99"):
        initial_state(init_origin(99), model)
    assert initial_state(None, model) is None
    assert initial_state({"kind": "sweep"}, model) is None


def test_a_weights_file_must_fit_exactly(tmp_path):
    facts = describe_dataset("digits").facts
    torch.manual_seed(1)
    source = build_model(DIGITS_CNN, facts)
    path = tmp_path / "pruned.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    torch.manual_seed(2)
    target = build_model(DIGITS_CNN, facts)
    report = initial_state({"kind": "compress", "init": {"weights": str(path)}}, target)
    assert report.loaded == ["conv1", "fc1", "fc2"] and report.weights == str(path)
    for name, tensor in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name
    other = build_model(CHILD, facts)
    with pytest.raises(TrainingError, match="another architecture.*fc1.weight"):
        initial_state({"kind": "compress", "init": {"weights": str(path)}}, other)
    with pytest.raises(NotFoundError, match="does not exist"):
        initial_state({"kind": "compress", "init": {"weights": str(tmp_path / "no.pt")}}, other)


def test_a_resumed_child_run_still_reports_what_it_started_from():
    """The first attempt loads the parent's weights; the resumed one starts from its own
    checkpoint, and its result still says what the run started from."""
    import threading

    from core.store import db
    from core.store import repository as repo
    from core.train import TrainConfig
    from core.worker import execute_run

    parent = runs.train_run_foreground(spec=DIGITS_CNN, dataset="digits", config=FAST)
    settings = TrainConfig(epochs=2, batch_size=64, device="cpu").to_dict()
    run_id = db.call(
        repo.create_run,
        spec=CHILD,
        dataset="digits",
        settings=settings,
        parent_run_id=parent["run_id"],
        origin=init_origin(parent["run_id"]),
    ).id
    pause = threading.Event()
    assert db.call(repo.claim_next_run, worker_id="first").id == run_id
    status = execute_run(
        run_id, worker_id="first", interrupted=pause, progress=lambda step, *_: step and pause.set()
    )
    assert status == "queued" and runs.list_checkpoints(run_id)  # paused mid-run, checkpointed
    assert 0 < runs.get_run(run_id).step < runs.get_run(run_id).total_steps

    assert db.call(repo.claim_next_run, worker_id="second").id == run_id
    assert execute_run(run_id, worker_id="second") == "completed"
    run = runs.get_run(run_id)
    assert run.attempts == 2
    assert run.result["init"]["from_run"] == parent["run_id"]
    assert run.result["init"]["loaded"] == ["conv1"]
    assert {s["name"] for s in run.result["init"]["skipped"]} == {"fc1", "fc2"}
