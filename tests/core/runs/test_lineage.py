"""Lineage: a run records the run it started from and how; its parent lists it as a child, and
the CLI, the run view and the Runs page all say so."""

from __future__ import annotations

import json

import pytest

from app import run_view
from core import runs
from core.cli.main import main
from core.errors import NotFoundError, SettingsError
from tests.pages.conftest import open_app
from tests.specs import TINY_MLP

FAST = {"steps": 10, "batch_size": 64, "device": "cpu", "log_every": 5}


@pytest.fixture
def parent() -> int:
    result = runs.train_run_foreground(spec=TINY_MLP, dataset="digits", config=FAST)
    assert result["status"] == "completed", result["error"]
    return result["run_id"]


def test_a_child_records_its_parent_and_origin_and_the_parent_lists_it(parent):
    origin = {"kind": "compress", "from_run": parent, "method": "structured 50%"}
    child = runs.submit_run(
        spec=TINY_MLP, dataset="digits", config=FAST, parent_run_id=parent, origin=origin
    )
    seen = runs.get_run(child)
    assert seen.parent_run_id == parent and seen.origin == origin
    assert [run.id for run in runs.children_of(parent)] == [child]
    assert runs.children_of(child) == [] and runs.get_run(parent).parent_run_id is None
    # the foreground path records it the same way
    grandchild = runs.train_run_foreground(
        spec=TINY_MLP, dataset="digits", config=FAST, parent_run_id=child, origin={"kind": "x"}
    )["run_id"]
    assert runs.get_run(grandchild).parent_run_id == child


def test_a_missing_parent_or_a_malformed_origin_queues_nothing(parent):
    before = len(runs.list_runs())
    with pytest.raises(NotFoundError, match="run 999 does not exist"):
        runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST, parent_run_id=999)
    with pytest.raises(SettingsError, match='"kind"'):
        runs.submit_run(spec=TINY_MLP, dataset="digits", config=FAST, origin={"from": 1})
    with pytest.raises(SettingsError, match="JSON"):
        runs.submit_run(
            spec=TINY_MLP, dataset="digits", config=FAST, origin={"kind": "x", "bad": object()}
        )
    assert len(runs.list_runs()) == before


def test_status_and_runs_json_carry_the_lineage(parent, capsys):
    child = runs.submit_run(
        spec=TINY_MLP,
        dataset="digits",
        config=FAST,
        parent_run_id=parent,
        origin={"kind": "init-from", "from_run": parent},
    )
    assert main(["status", str(child), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["parent_run_id"] == parent and status["origin"]["kind"] == "init-from"
    assert main(["status", str(parent), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["children"] == [child]
    assert main(["status", str(child)]) == 0
    assert f"from run {parent} (init-from)" in capsys.readouterr().out
    assert main(["runs", "--json"]) == 0
    listed = {row["run_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed[child]["parent_run_id"] == parent and listed[child]["origin_kind"] == "init-from"
    assert listed[parent]["parent_run_id"] is None


def test_lineage_in_words(parent):
    child = runs.get_run(
        runs.submit_run(
            spec=TINY_MLP,
            dataset="digits",
            config=FAST,
            parent_run_id=parent,
            origin={"kind": "compress"},
        )
    )
    assert run_view.origin_text(child) == f"compressed from run {parent}"
    assert run_view.lineage_text(runs.get_run(parent), [child]) == (
        f"Runs started from this one: run {child.id} (compress)."
    )
    assert run_view.lineage_text(runs.get_run(parent), []) is None


def test_the_runs_page_shows_parent_and_children(parent):
    child = runs.submit_run(
        spec=TINY_MLP,
        dataset="digits",
        config=FAST,
        parent_run_id=parent,
        origin={"kind": "init-from"},
    )
    at = open_app("runs", query_params={"run": str(child)})
    assert not at.exception
    said = " ".join(c.value for c in at.caption).replace("\\", "")
    assert f"Started from the weights of run {parent}." in said
    table = at.dataframe[0].value
    froms = dict(zip(table["run"], table["from"], strict=True))
    assert froms[child] == f"started from the weights of run {parent}" and froms[parent] == ""
