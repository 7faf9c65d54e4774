"""`csv:` uploads: round trips (tabular, regression, sequence) and every refused input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import get_settings
from core.data import load_dataset, register_upload
from core.errors import DataError
from tests.core.data.conftest import snapshot, write_csv


def iris_like(path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    rows = [
        [f"{rng.normal():.4f}", f"{rng.normal() * 5 + 10:.4f}", ["cat", "dog"][i % 2]]
        for i in range(n)
    ]
    return write_csv(path, ["width", "height", "species"], rows)


def test_tabular_round_trip(tmp_path: Path) -> None:
    path = iris_like(tmp_path / "pets.csv")
    dataset = load_dataset(f"csv:{path}")
    assert dataset.task == "classification" and dataset.modality == "tabular"
    assert dataset.sample_shape == (2,) and dataset.class_names == ["cat", "dog"]
    assert dataset.sizes == {"train": 29, "val": 3, "test": 8}
    assert dataset.feature_names == ["width", "height"] and dataset.target_name == "species"
    assert dataset.normalization.mean.shape == (2,)  # per feature
    row = dataset.human(dataset.test.x[0])
    source_row = int(dataset.test.indices[0])
    lines = path.read_text().splitlines()
    width, height, _ = lines[source_row + 1].split(",")
    assert row == pytest.approx({"width": float(width), "height": float(height)}, abs=1e-4)


def test_label_column_chosen_named_or_last(tmp_path: Path) -> None:
    rows = [[i % 2, i, (i * 7) % 3] for i in range(30)]
    named = write_csv(tmp_path / "named.csv", ["target", "x", "z"], rows)
    assert load_dataset(f"csv:{named}").target_name == "target"
    last = write_csv(tmp_path / "last.csv", ["a", "x", "z"], rows)
    assert load_dataset(f"csv:{last}").target_name == "z"
    chosen = load_dataset(f"csv:{last}?label=a")
    assert chosen.target_name == "a" and chosen.feature_names == ["x", "z"]
    with pytest.raises(DataError, match=r"has no column 'nope' for the label; columns: a, x, z"):
        load_dataset(f"csv:{last}?label=nope")


def test_float_target_is_regression(tmp_path: Path) -> None:
    rows = [[i, i * 2, i * 0.5 + 0.25] for i in range(30)]
    path = write_csv(tmp_path / "houses.csv", ["rooms", "area", "price"], rows)
    dataset = load_dataset(f"csv:{path}")
    assert dataset.task == "regression" and dataset.num_classes == 1 and dataset.class_names == []
    assert dataset.train.y.dtype == torch.float32
    forced = load_dataset(f"csv:{path}?label=rooms&task=regression")
    assert forced.task == "regression"


def test_many_distinct_integers_are_regression_few_are_classes(tmp_path: Path) -> None:
    many = write_csv(tmp_path / "many.csv", ["x", "age"], [[i, 20 + i] for i in range(40)])
    assert load_dataset(f"csv:{many}").task == "regression"
    few = write_csv(tmp_path / "few.csv", ["x", "grade"], [[i, i % 4] for i in range(40)])
    dataset = load_dataset(f"csv:{few}")
    assert dataset.task == "classification" and dataset.class_names == ["0", "1", "2", "3"]


def test_sequence_rows_are_signals(tmp_path: Path) -> None:
    rows = [[*np.round(np.sin(np.arange(12) * (1 + i % 3)), 4), i % 3] for i in range(30)]
    path = write_csv(tmp_path / "waves.csv", [f"t{i}" for i in range(12)] + ["label"], rows)
    dataset = load_dataset(f"csv:{path}?sequence=true")
    assert dataset.modality == "signal" and dataset.sample_shape == (1, 12)
    assert dataset.normalization.mean.shape == (1, 1)
    assert dataset.human(dataset.train.x[0]).shape == (12,)


def test_split_determinism(tmp_path: Path) -> None:
    path = iris_like(tmp_path / "pets.csv", n=100)
    first, again = load_dataset(f"csv:{path}", seed=1), load_dataset(f"csv:{path}", seed=1)
    other = load_dataset(f"csv:{path}", seed=2)
    assert torch.equal(first.val.indices, again.val.indices)
    assert not torch.equal(first.val.indices, other.val.indices)
    assert torch.equal(first.test.indices, other.test.indices)  # test carved with a fixed seed


def test_semicolon_csv_and_bom_are_read(tmp_path: Path) -> None:
    text = "\ufeffa;b;label\n" + "".join(f"{i};{i * 2};{i % 2}\n" for i in range(20))
    path = tmp_path / "excel.csv"
    path.write_text(text, encoding="utf-8")
    assert load_dataset(f"csv:{path}").feature_names == ["a", "b"]


BAD_CSVS = [
    (
        "missing.csv",
        "a,b,label\n1,2,x\n3,,y\n5,6,x\n",
        r"missing.csv: column 'b' has no value in row 3 \(row 1 is the header\)",
    ),
    (
        "mixed.csv",
        "a,b,label\n1,2,x\n3,abc,y\n5,6,x\n",
        r"column 'b' mixes numbers and text: row 3 holds 'abc' while row 2 holds '2'",
    ),
    (
        "words.csv",
        "a,colour,label\n1,red,x\n3,blue,y\n5,red,x\n",
        r"column 'colour' holds text \('red' in row 2\); feature columns must hold numbers",
    ),
    (
        "single.csv",
        "a,label\n1,x\n2,x\n3,x\n",
        r"label column 'label' holds a single class \('x'\) in all 3 rows; a classifier needs at least two",
    ),
    ("norows.csv", "a,b,label\n", r"norows.csv has a header but no rows"),
    ("empty.csv", "", r"empty.csv is empty; expected a header row"),
    (
        "ragged.csv",
        "a,b,label\n1,2,x\n3,y\n",
        r"ragged.csv row 3 has 2 fields but the header has 3",
    ),
    ("onlylabel.csv", "label\nx\ny\n", r"has only the label column 'label'"),
    ("tiny.csv", "a,label\n1,x\n2,y\n", r"has 2 rows; at least 3 are needed"),
    (
        "huge.csv",  # float32 holds at most ±3.4e38: 1e300 would become infinity in training
        "a,b,label\n1,2,x\n3,-1e300,y\n5,6,x\n",
        r"huge.csv: column 'b' holds -1e300 in row 3, beyond what the model computes with "
        r"\(float32: at most ±3.40e\+38\)",
    ),
    (
        "hugetarget.csv",
        "a,price\n" + "".join(f"{i},{i}.5\n" for i in range(5)) + "6,1e300\n",
        r"column 'price' holds 1e300 in row 7, beyond .*float32",
    ),
]


@pytest.mark.parametrize(("filename", "content", "message"), BAD_CSVS)
def test_bad_csv_refused_and_nothing_written(
    tmp_path: Path, studio_home: Path, filename: str, content: str, message: str
) -> None:
    path = tmp_path / filename
    path.write_text(content, encoding="utf-8")
    before_home, before_tmp = snapshot(studio_home), snapshot(tmp_path)
    with pytest.raises(DataError, match=message):
        register_upload("csv", path)
    with pytest.raises(DataError, match=message):
        load_dataset(f"csv:{path}")
    assert snapshot(studio_home) == before_home
    assert snapshot(tmp_path) == before_tmp
    assert not get_settings().uploads_dir.exists()


def test_a_text_class_column_that_is_not_last_says_how_to_make_it_the_label(
    tmp_path: Path,
) -> None:
    path = tmp_path / "species.csv"
    rows = "".join(f"{'ab'[i % 2]},{i},{i * 3 % 7}\n" for i in range(20))
    path.write_text("species,a,b\n" + rows, encoding="utf-8")
    with pytest.raises(DataError, match=r"column 'species' holds text .* \?label=species after"):
        load_dataset(f"csv:{path}")
    assert load_dataset(f"csv:{path}?label=species").class_names == ["a", "b"]


def test_unreadable_encoding_says_save_as_utf8(tmp_path: Path, studio_home: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name,value,label\ncaf\xe9,1,x\n".encode("latin-1"))
    with pytest.raises(
        DataError,
        match=r"latin.csv is not UTF-8 text \(row 2: byte 0xe9 at offset 20\); save it as UTF-8",
    ):
        register_upload("csv", path)
    assert not get_settings().uploads_dir.exists()


def test_file_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "1")
    path = tmp_path / "big.csv"
    path.write_text("a,label\n" + "1,x\n2,y\n" * 300_000)
    with pytest.raises(
        DataError,
        match=r"big.csv is 2.3 MB, over the upload limit of 1 MB \(STUDIO_MAX_UPLOAD_MB\)",
    ):
        register_upload("csv", path)
    with pytest.raises(DataError, match=r"over the upload limit"):
        load_dataset(f"csv:{path}")
    assert not get_settings().uploads_dir.exists()


def test_bad_options_are_refused(tmp_path: Path) -> None:
    path = iris_like(tmp_path / "pets.csv")
    with pytest.raises(
        DataError, match=r"unknown csv option 'lable'; csv uploads take: label, sequence, task"
    ):
        load_dataset(f"csv:{path}?lable=species")
    with pytest.raises(
        DataError, match=r"csv option task='maybe' must be one of auto, classification, regression"
    ):
        load_dataset(f"csv:{path}?task=maybe")
    with pytest.raises(DataError, match=r"does not exist"):
        load_dataset(f"csv:{tmp_path / 'absent.csv'}")


def test_regression_targets_are_standardized_on_train_and_read_back_in_their_units(
    tmp_path: Path,
) -> None:
    rows = [[i, (i * 7) % 11, 1000.0 + 50.0 * i + 0.5] for i in range(60)]
    dataset = load_dataset(f"csv:{write_csv(tmp_path / 'prices.csv', ['a', 'b', 'price'], rows)}")
    train_y = dataset.train.y
    assert abs(float(train_y.mean())) < 1e-5 and abs(float(train_y.std(unbiased=False)) - 1) < 1e-4
    raw = {row[2] for row in rows}
    for split in (dataset.train, dataset.val, dataset.test):
        for stored in split.y[:5]:
            back = float(dataset.denormalize_target(stored))
            assert min(abs(back - r) for r in raw) < 1e-2  # every target comes back exactly
            assert dataset.label_name(stored) == f"{back:.4g}"
