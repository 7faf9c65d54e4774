"""Tiny synthetic datasets of every kind, each trained for real (the worker's own loop, through
`train_run_foreground`) in its own studio home, once per session.

In each, the class (or the value) depends on one known region or column only, so a per-class
map that works must point there:
- images 8x8: the class is the brightness of the top-left 3x3 block (bright or dim, never
  black: Integrated Gradients from a black baseline cannot see black); the rest is dark noise;
- signals of 20 steps: the class is the sign of steps 12-15; the rest is noise;
- tables: the class is the sign of column "key"; columns a, b, c are noise;
- text: the class follows the words "great"/"love" vs "awful"/"hate"; the rest is filler;
- regression (a table): the value is 3 x column "key" plus a little noise.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from core import runs

BLOCK = (slice(0, 3), slice(0, 3))  # rows, columns of the image region that decides the class
STEPS = slice(12, 16)  # the time steps that decide a signal's class
MLP = {"name": "tiny-mlp", "layers": [{"type": "Flatten"}, {"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear"}]}  # fmt: skip
TEXT_MODEL = {
    "name": "tiny-bag-of-words",
    "layers": [
        {"type": "Embedding", "embedding_dim": 8},
        {"type": "SequencePool", "mode": "mean"},
        {"type": "Linear"},
    ],
}
FAST = {"epochs": 30, "batch_size": 32, "lr": 0.01, "device": "cpu", "seed": 0}


@dataclass(frozen=True)
class Trained:
    """A trained run in its own studio home: its id, model and dataset."""

    home: Path
    run_id: int
    model: Any
    dataset: Any


@pytest.fixture(scope="session", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny tensors: one thread is fastest beside other busy processes on two cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(home: Path, dataset: str, spec: dict, config: dict | None = None) -> Trained:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        patch.setenv("STUDIO_DATABASE_URL", f"sqlite:///{home / 'studio.db'}")
        result = runs.train_run_foreground(spec=spec, dataset=dataset, config=config or FAST)
        assert result["status"] == "completed", result["error"]
        model, data, _run = runs.load_run_model(result["run_id"])
    return Trained(home, result["run_id"], model, data)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("region-images")
    rng = np.random.default_rng(0)
    for name, low, high in (("bright", 0.8, 1.0), ("dim", 0.4, 0.55)):
        (folder / name).mkdir()
        for i in range(150):
            pixels = rng.uniform(0, 0.3, (8, 8))  # dark noise, as on digits' paper
            pixels[BLOCK] = rng.uniform(low, high, (3, 3))
            Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / name / f"{i}.png")
    home = tmp_path_factory.mktemp("home-images")
    return _train(home, f"images:{folder}?size=8&channels=1", MLP)


@pytest.fixture(scope="session")
def signal_run(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("region-signals")
    rng = np.random.default_rng(1)
    rows = []
    for _ in range(300):
        values = rng.normal(0, 1, 20)
        label = "up" if values[STEPS].mean() > 0 else "down"
        rows.append([*np.round(values, 4).tolist(), label])
    header = [f"t{i}" for i in range(20)] + ["label"]
    path = _write_csv(folder / "signals.csv", header, rows)
    return _train(tmp_path_factory.mktemp("home-signals"), f"csv:{path}?sequence=true", MLP)


@pytest.fixture(scope="session")
def table_run(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("key-table")
    rng = np.random.default_rng(2)
    rows = []
    for _ in range(300):
        a, b, key, c = rng.normal(0, 1, 4).round(4)
        rows.append([a, b, key, c, "yes" if key > 0 else "no"])
    path = _write_csv(folder / "table.csv", ["a", "b", "key", "c", "label"], rows)
    return _train(tmp_path_factory.mktemp("home-table"), f"csv:{path}", MLP)


@pytest.fixture(scope="session")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("key-values")
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(300):
        a, key, b = rng.normal(0, 1, 3).round(4)
        rows.append([a, key, b, round(3 * key + rng.normal(0, 0.1), 4)])
    path = _write_csv(folder / "values.csv", ["a", "key", "b", "price"], rows)
    return _train(
        tmp_path_factory.mktemp("home-values"), f"csv:{path}?label=price&task=regression", MLP
    )


POSITIVE, NEGATIVE = ("great", "love"), ("awful", "hate")
FILLER = ("the", "a", "film", "movie", "was", "plot", "actors", "it", "this", "story")
# class names from the data are text, never markup: the report must show them escaped
TEXT_CLASSES = ("<i>good</i>", "bad & sad")


@pytest.fixture(scope="session")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    folder = tmp_path_factory.mktemp("words")
    rng = np.random.default_rng(4)
    rows = []
    for i in range(240):
        positive = i % 2 == 0
        words = list(rng.choice(FILLER, 6))
        words.insert(int(rng.integers(0, 6)), str(rng.choice(POSITIVE if positive else NEGATIVE)))
        rows.append([" ".join(words), TEXT_CLASSES[0] if positive else TEXT_CLASSES[1]])
    path = _write_csv(folder / "reviews.csv", ["text", "label"], rows)
    return _train(tmp_path_factory.mktemp("home-text"), f"text:{path}?max_length=12", TEXT_MODEL)
