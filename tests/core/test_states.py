"""Run states and the transitions between them, written once in core.states."""

from __future__ import annotations

import json

import pytest

from core.states import (
    ACTIVE,
    FINISHED,
    TRANSITIONS,
    RunRequest,
    RunStatus,
    allowed_from,
    can_request,
    finished_status,
    obeyed_status,
)


def test_statuses_are_the_plain_strings_the_database_and_json_carry():
    assert RunStatus.CANCELLED == "cancelled"
    assert json.dumps({"status": RunStatus.RUNNING}) == '{"status": "running"}'
    assert [str(s) for s in RunStatus] == [
        "queued", "running", "paused", "completed", "failed", "cancelled", "pruned",
    ]  # fmt: skip
    assert set(RunStatus) == ACTIVE | FINISHED and not ACTIVE & FINISHED


def test_every_transition_leaves_from_a_state_that_allows_it():
    for request, transitions in TRANSITIONS.items():
        for transition in transitions:
            assert not transition.from_statuses & FINISHED, request  # finished runs stay so
            if transition.to is None:  # a running run is asked, never moved
                assert transition.from_statuses == {RunStatus.RUNNING}


@pytest.mark.parametrize(
    ("asked", "status", "pending", "expected"),
    [
        ("stop", "queued", None, True),
        ("stop", "running", None, True),
        ("stop", "running", "stop", False),  # already asked
        ("stop", "completed", None, False),
        ("pause", "running", "pause", False),
        ("pause", "paused", None, False),
        ("resume", "paused", None, True),
        ("resume", "running", "pause", True),  # withdraws the pause
        ("resume", "running", None, False),
        ("resume", "queued", None, False),
    ],
)
def test_which_requests_a_run_allows(asked, status, pending, expected):
    assert can_request(RunRequest(asked), status, pending) is expected


def test_refusals_name_the_statuses_that_would_be_allowed():
    assert allowed_from(RunRequest.STOP) == ["queued", "running", "paused"]
    assert allowed_from(RunRequest.RESUME) == ["paused"]


def test_the_status_a_run_closes_with():
    assert finished_status("cancelled") == RunStatus.CANCELLED
    assert finished_status("paused") == RunStatus.PAUSED
    assert finished_status("paused", RunStatus.QUEUED) == RunStatus.QUEUED  # a signal releases it
    assert finished_status("completed", RunStatus.QUEUED) == RunStatus.COMPLETED
    with pytest.raises(ValueError):
        finished_status("stopped")  # one vocabulary: the loop says cancelled too
    assert [obeyed_status(a) for a in ("stop", "pause", None)] == ["cancelled", "paused", "queued"]
