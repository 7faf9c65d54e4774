"""Runs of every dataset kind, trained once for the session in a home of their own and prepared
for serving, with their raw test samples (as a person has them) and the studio's own answers."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import runs
from core.runs.models import load_run_model
from core.serve.server import prepare_run
from tests.specs import TINY_MLP

FAST = {"seed": 0, "steps": 5, "batch_size": 8, "device": "cpu"}
SAMPLES = 24  # test samples compared per kind
TEXT_MODEL = {
    "name": "bag-of-words",
    "layers": [
        {"type": "Embedding", "embedding_dim": 8},
        {"type": "SequencePool", "mode": "mean"},
        {"type": "Linear"},
    ],
}
POSITIVE = ["a lovely, warm film", "I loved it!", "Great acting and a GREAT story", "wonderful"]
NEGATIVE = ["a dull film", "I hated it.", "Boring, boring, BORING", "awful acting, don't"]


@dataclass(frozen=True)
class Served:
    """A run prepared for serving, with what the studio itself says about its test samples."""

    run_id: int
    folder: Path
    runtime: str
    raw: list  # raw test samples, as /predict takes them
    normalized: np.ndarray  # the dataset's own model inputs for them
    outputs: np.ndarray  # the studio model's outputs on `normalized`
    files: list[bytes] | None = None  # image files of the samples (image uploads)


def write_table(path: Path, *, regression: bool = False) -> Path:
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["height cm", "weight", "age", "label"])
        for i in range(60):
            height, weight, age = rng.normal(170, 10), rng.normal(70, 15), rng.integers(18, 90)
            label = (
                round(weight / 10 + age / 7 + rng.normal(), 3) if regression else ["a", "b"][i % 2]
            )
            writer.writerow([f"{height:.2f}", f"{weight:.1f}", int(age), label])
    return path


def write_reviews(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        for i in range(40):
            texts, label = (POSITIVE, "pos") if i % 2 == 0 else (NEGATIVE, "neg")
            writer.writerow([f"{texts[i // 2 % 4]} word{i}", label])
    return path


def write_images(folder: Path) -> Path:
    """Two classes of 12x10 RGB pictures (bright top / bright bottom), served at 8x8."""
    rng = np.random.default_rng(0)
    for label in ("bottom", "top"):
        (folder / label).mkdir(parents=True)
        for i in range(10):
            pixels = rng.integers(0, 120, (10, 12, 3), dtype=np.uint8)
            rows = slice(0, 5) if label == "top" else slice(5, 10)
            pixels[rows] += 120
            Image.fromarray(pixels).save(folder / label / f"{i}.png")
    return folder


def _table_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _raw_samples(kind: str, source: Path | None, data, indices: list[int]) -> list:
    if kind == "digits":
        from sklearn.datasets import load_digits

        images = load_digits().images  # 0..16, the form the dataset comes in
        return [images[i].astype(int).tolist() for i in indices]
    if kind == "mnist1d":
        from core.config import get_settings
        from core.data.builtin import MNIST1D_CACHE

        with np.load(get_settings().dataset_cache_dir / MNIST1D_CACHE) as cache:
            return [cache["x_test"][i].tolist() for i in indices]
    if kind in ("table", "regression"):
        header, rows = _table_rows(source)
        features = header[:-1]
        return [{name: float(rows[i][c]) for c, name in enumerate(features)} for i in indices]
    if kind == "text":
        _, rows = _table_rows(source)
        return [rows[i][0] for i in indices]
    files = data.extras["files"]  # images: pixels of the files themselves, (H, W, 3) 0..255
    return [
        np.asarray(
            Image.open(source / files[i]).convert("RGB").resize((8, 8), Image.Resampling.BILINEAR)
        )
        for i in indices
    ]


CASES = {  # kind -> (dataset name or maker, spec, runtime)
    "digits": (lambda tmp: "digits", TINY_MLP, "onnx"),
    "mnist1d": (lambda tmp: "mnist1d", TINY_MLP, "torch"),
    "table": (lambda tmp: f"csv:{write_table(tmp / 'people.csv')}", TINY_MLP, "torch"),
    "regression": (
        lambda tmp: f"csv:{write_table(tmp / 'ages.csv', regression=True)}?task=regression",
        TINY_MLP,
        "torch",
    ),
    "text": (
        lambda tmp: f"text:{write_reviews(tmp / 'reviews.csv')}?max_length=6",
        TEXT_MODEL,
        "onnx",
    ),
    "images": (lambda tmp: f"images:{write_images(tmp / 'pictures')}?size=8", TINY_MLP, "torch"),
}


def _prepare(kind: str, tmp: Path) -> Served:
    make_name, spec, runtime = CASES[kind]
    name = make_name(tmp)
    result = runs.train_run_foreground(spec=spec, dataset=name, config=FAST)
    assert result["status"] == "completed", result
    folder = prepare_run(result["run_id"], onnx=runtime == "onnx")
    model, data, _ = load_run_model(result["run_id"])
    count = min(SAMPLES, len(data.test))
    indices = data.test.indices[:count].tolist()
    source = Path(name.partition(":")[2].partition("?")[0]) if ":" in name else None
    raw = _raw_samples(kind, source, data, indices)
    files = None
    if kind == "images":
        files = [(source / data.extras["files"][i]).read_bytes() for i in indices]
        raw = [pixels.tolist() for pixels in raw]
    with torch.no_grad():
        outputs = model(data.test.x[:count]).numpy()
    return Served(
        run_id=result["run_id"],
        folder=folder,
        runtime=runtime,
        raw=raw,
        normalized=data.test.x[:count].numpy(),
        outputs=outputs,
        files=files,
    )


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Served]:
    """Every kind, trained and prepared once (a few seconds each) in a home of their own."""
    home = tmp_path_factory.mktemp("serve_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        patch.setenv("STUDIO_DATABASE_URL", f"sqlite:///{home / 'studio.db'}")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return {kind: _prepare(kind, tmp_path_factory.mktemp(kind)) for kind in CASES}
        finally:
            torch.set_num_threads(threads)
