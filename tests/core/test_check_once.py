"""Check once: a launch traces its spec once in the process that submits it, and the model is
built from that trace."""

from __future__ import annotations

import pytest

from core import builder, runs
from core.data import describe_dataset
from core.errors import SpecError
from tests.specs import TINY_MLP

FAST = {"epochs": 1, "batch_size": 256, "device": "cpu"}


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every spec traced from now on."""
    traced: list[str] = []
    real = builder.trace

    def counting(spec, facts=None, **options):
        traced.append(spec.get("name") if isinstance(spec, dict) else None)
        return real(spec, facts, **options)

    monkeypatch.setattr(builder, "trace", counting)
    return traced


def test_studio_train_traces_the_spec_once_and_builds_from_that_trace(traces):
    result = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=FAST)
    assert result["status"] == "completed", result["error"]
    assert traces == ["tiny"]


def test_a_submission_reuses_the_check_made_for_the_same_spec_and_dataset(traces):
    checked = runs.check_launch(TINY_MLP, describe_dataset("digits").facts)
    run_id = runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST, checked=checked)
    assert traces == ["tiny"]
    assert runs.get_run(run_id).status == "queued"


def test_without_a_check_a_submission_traces_once(traces):
    runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST)
    assert traces == ["tiny"]


def test_a_check_of_another_dataset_or_spec_is_not_trusted(traces):
    checked = runs.check_launch(TINY_MLP, describe_dataset("digits").facts)
    runs.submit_run(spec=TINY_MLP, dataset="mnist1d", config=FAST, checked=checked)
    assert len(traces) == 2  # mnist1d has other facts: traced again
    broken = {"name": "broken", "layers": [{"type": "Conv2d", "out_channels": 4}]}
    with pytest.raises(SpecError, match="layer 0 Conv2d"):
        runs.submit_run(spec=broken, dataset="digits", config=FAST, checked=checked)
    assert len(runs.list_runs()) == 1  # nothing queued for the broken spec


def test_a_model_is_built_only_from_a_finished_trace():
    facts = describe_dataset("digits").facts
    loose = builder.trace(TINY_MLP, facts)
    with pytest.raises(ValueError, match="finished=True"):
        builder.model_from_trace(loose)
    model = builder.model_from_trace(builder.check_model(TINY_MLP, facts, finished=True))
    assert model.facts == facts
