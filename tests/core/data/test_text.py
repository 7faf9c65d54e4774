"""`text:` uploads: tokenizer, vocabulary from train only, padding, unknown words."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.config import get_settings
from core.data import load_dataset, register_upload
from core.data.text import build_vocabulary, encode, tokenize
from core.errors import DataError
from tests.core.data.conftest import snapshot, write_csv

POSITIVE = ["a lovely, warm film", "I loved it!", "Great acting and a great story", "wonderful"]
NEGATIVE = ["a dull film", "I hated it.", "Boring, boring, BORING", "awful acting"]


def reviews(path: Path, n: int = 40) -> Path:
    rows = []
    for i in range(n):
        texts, label = (POSITIVE, "pos") if i % 2 == 0 else (NEGATIVE, "neg")
        rows.append([f"{texts[i // 2 % 4]} word{i}", label])
    return write_csv(path, ["review", "sentiment"], rows)


def test_tokenizer_and_vocabulary() -> None:
    assert tokenize("Hello, World! Don't stop.") == ["hello", "world", "don't", "stop"]
    vocabulary = build_vocabulary([["b", "a", "b"], ["c", "a", "b"]], min_freq=2)
    assert vocabulary == ["<pad>", "<unk>", "b", "a"]
    assert build_vocabulary([["b", "a", "c"]], max_size=4) == ["<pad>", "<unk>", "a", "b"]
    ids = encode([["a", "zzz"], ["b"] * 5], vocabulary, max_length=3)
    assert ids.tolist() == [[3, 1, 0], [2, 2, 2]]


def test_text_round_trip(tmp_path: Path) -> None:
    path = reviews(tmp_path / "reviews.csv")
    dataset = load_dataset(f"text:{path}?max_length=6")
    assert dataset.modality == "text" and dataset.sample_shape == (6,)
    assert dataset.input_dtype == torch.int64 and dataset.train.x.dtype == torch.int64
    assert dataset.class_names == ["neg", "pos"] and dataset.target_name == "sentiment"
    assert dataset.vocabulary[:2] == ["<pad>", "<unk>"]
    assert dataset.sizes == {"train": 29, "val": 3, "test": 8}
    # vocabulary from the training rows only: a word seen only in a test row is unknown
    test_row = int(dataset.test.indices[0])
    assert f"word{test_row}" not in dataset.vocabulary
    shown = dataset.human(dataset.test.x[0])
    assert shown.endswith("<unk>")
    assert torch.equal(dataset.normalize(dataset.train.x), dataset.train.x)
    train_row = int(dataset.train.indices[0])
    assert f"word{train_row}" in dataset.vocabulary


def test_truncation_padding_and_min_freq(tmp_path: Path) -> None:
    path = reviews(tmp_path / "reviews.csv")
    dataset = load_dataset(f"text:{path}?max_length=3&min_freq=3")
    assert dataset.train.x.shape[1] == 3
    assert not any(word.startswith("word") for word in dataset.vocabulary)  # each seen once
    long = load_dataset(f"text:{path}?max_length=20")
    assert (long.train.x[:, -1] == 0).all()  # padded with <pad>


def test_text_columns_chosen(tmp_path: Path) -> None:
    rows = [[i, f"text number {i}", i % 2] for i in range(20)]
    path = write_csv(tmp_path / "t.csv", ["id", "body", "flag"], rows)
    dataset = load_dataset(f"text:{path}?text=body&label=flag")
    assert dataset.class_names == ["0", "1"]
    with pytest.raises(
        DataError, match=r"t.csv has no column 'title' for the text; columns: id, body, flag"
    ):
        load_dataset(f"text:{path}?text=title")


def test_split_determinism(tmp_path: Path) -> None:
    path = reviews(tmp_path / "reviews.csv", n=60)
    first, again = load_dataset(f"text:{path}", seed=5), load_dataset(f"text:{path}", seed=5)
    other = load_dataset(f"text:{path}", seed=6)
    assert torch.equal(first.val.indices, again.val.indices)
    assert first.vocabulary == again.vocabulary
    assert not torch.equal(first.val.indices, other.val.indices)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("review,sentiment\ngood,pos\n,neg\nbad,neg\n", r"column 'review' has no value in row 3"),
        ("review,sentiment\ngood,pos\nbad,pos\nfine,pos\n", r"holds a single class \('pos'\)"),
        ("review,sentiment\n", r"has a header but no rows"),
        ("review\ngood\n", r"needs a text column and a label column"),
    ],
)
def test_bad_text_csv_refused(
    tmp_path: Path, studio_home: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    before = snapshot(studio_home)
    with pytest.raises(DataError, match=message):
        register_upload("text", path)
    assert snapshot(studio_home) == before
    assert not get_settings().uploads_dir.exists()


def test_non_utf8_text_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp1252.csv"
    path.write_bytes("review,sentiment\nna\xefve \u201cquote\u201d,pos\n".encode("cp1252"))
    with pytest.raises(DataError, match=r"cp1252.csv is not UTF-8 text .*save it as UTF-8"):
        load_dataset(f"text:{path}")


def test_a_cell_past_the_field_limit_names_the_limit_and_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = reviews(tmp_path / "reviews.csv")
    with path.open("a") as handle:
        handle.write('"' + "word " * 40_000 + '",good\n')  # a 200 KB review
    monkeypatch.setenv("STUDIO_MAX_TEXT_FIELD_KB", "128")
    with pytest.raises(DataError) as refused:
        load_dataset(f"text:{path}")
    message = str(refused.value)
    assert "a cell is longer than the limit of 128 KB per cell" in message
    assert "STUDIO_MAX_TEXT_FIELD_KB" in message and "131072" not in message
    monkeypatch.setenv("STUDIO_MAX_TEXT_FIELD_KB", "1024")
    assert load_dataset(f"text:{path}").info().sizes  # raised, it loads
