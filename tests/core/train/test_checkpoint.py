"""Checkpoints: atomic writes, and files that are missing, truncated or hostile are refused."""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import TrainingError
from core.train import checkpoint
from core.train.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)


def a_state(value: float = 1.0) -> dict:
    return {"model": {"weight": torch.full((3, 3), value)}, "step": 7, "note": "ok"}


def test_round_trip(tmp_path: Path):
    path = save_checkpoint(tmp_path / "sub" / "epoch1.pt", a_state())
    state = load_checkpoint(path)
    assert torch.equal(state["model"]["weight"], torch.ones(3, 3)) and state["step"] == 7


def test_a_failed_write_leaves_the_previous_file_and_no_temp_files(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    save_checkpoint(path, a_state(1.0))

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, a_state(2.0))
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]
    assert torch.equal(load_checkpoint(path)["model"]["weight"], torch.ones(3, 3))


def test_missing_and_truncated_files_are_refused(tmp_path: Path):
    with pytest.raises(TrainingError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    path = save_checkpoint(tmp_path / "whole.pt", a_state())
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(TrainingError, match="truncated"):
        load_checkpoint(truncated)


class Hostile:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_a_hostile_pickle_is_refused_and_nothing_runs(tmp_path: Path, writer: str):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"model": {}, "payload": Hostile(marker)}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(TrainingError, match="refused|cannot be read"):
        load_checkpoint(path)
    assert not marker.exists()


def test_rng_states_survive_a_weights_only_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    torch.randn(5), np.random.rand(3), random.random()
    path = save_checkpoint(tmp_path / "rng.pt", {"model": {}, "rng": capture_rng_state()})
    expected = (torch.randn(4), np.random.rand(4), [random.random() for _ in range(4)])
    restore_rng_state(load_checkpoint(path)["rng"])
    again = (torch.randn(4), np.random.rand(4), [random.random() for _ in range(4)])
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1]) and expected[2] == again[2]
