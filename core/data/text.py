"""`text:PATH` uploads: a lowercase word tokenizer and a vocabulary built from train only."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from core.data.assemble import build_upload_dataset, upload_splits
from core.data.csvfile import check_complete, choose_column, labels_from, read_table
from core.data.dataset import PAD_TOKEN, UNK_TOKEN, Dataset
from core.errors import DataError

TOKEN_PATTERN = re.compile(r"[\w']+")  # words, digits and in-word apostrophes ("don't")
TEXT_NAMES = ("text", "sentence", "review", "content", "message", "document", "comment")
PAD_ID, UNK_ID = 0, 1


def tokenize(text: str) -> list[str]:
    """Lowercase words: 'Hello, World!' -> ['hello', 'world']."""
    return TOKEN_PATTERN.findall(text.lower())


def build_vocabulary(
    token_lists: Iterable[list[str]], *, min_freq: int = 1, max_size: int = 20000
) -> list[str]:
    """[<pad>, <unk>, most frequent tokens...]; ties broken alphabetically so it is stable."""
    counts = Counter(token for tokens in token_lists for token in tokens)
    ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
    return [PAD_TOKEN, UNK_TOKEN, *ranked[: max(0, max_size - 2)]]


def encode(token_lists: list[list[str]], vocabulary: list[str], *, max_length: int) -> np.ndarray:
    """(n, max_length) int64 ids: unknown words -> <unk>, truncated, padded with <pad>."""
    index = {token: i for i, token in enumerate(vocabulary)}
    ids = np.full((len(token_lists), max_length), PAD_ID, dtype=np.int64)
    for row, tokens in enumerate(token_lists):
        clipped = [index.get(t, UNK_ID) for t in tokens[:max_length]]
        ids[row, : len(clipped)] = clipped
    return ids


def _text_column(columns: list[str], requested: str | None, path: Path) -> str:
    if requested is not None:
        if requested not in columns:
            raise DataError(
                f"{path.name} has no column {requested!r} for the text; columns: {', '.join(columns)}"
            )
        return requested
    for column in columns:
        if column.strip().lower() in TEXT_NAMES:
            return column
    return columns[0]


def load_text_dataset(
    path: Path,
    *,
    name: str,
    val_fraction: float,
    seed: int,
    text: str | None = None,
    label: str | None = None,
    max_length: int = 64,
    min_freq: int = 1,
    max_vocab: int = 20000,
    task: str = "auto",
) -> Dataset:
    """Token ids shaped (max_length,); vocabulary from the rows training sees, never val/test."""
    table = read_table(path)
    if len(table.columns) < 2:
        raise DataError(
            f"{path.name} needs a text column and a label column; it has {table.columns}"
        )
    text_column = _text_column(table.columns, text, path)
    label_column = choose_column(table, label, role="label", exclude=(text_column,))
    if label_column == text_column:
        raise DataError(f"{path.name}: the text and label columns are both {text_column!r}")
    check_complete(table, [text_column, label_column])
    task, y, class_names = labels_from(table, label_column, task=task)
    token_lists = [tokenize(t) for t in table.column(text_column)]
    _, _, training_rows = upload_splits(y, task=task, val_fraction=val_fraction, seed=seed)
    vocabulary = build_vocabulary(
        (token_lists[i] for i in training_rows), min_freq=min_freq, max_size=max_vocab
    )
    ids = encode(token_lists, vocabulary, max_length=max_length)
    return build_upload_dataset(
        x=ids,
        y=y,
        task=task,
        val_fraction=val_fraction,
        seed=seed,
        name=name,
        modality="text",
        class_names=class_names,
        vocabulary=vocabulary,
        target_name=label_column,
        description=f"{path.name}: {len(y)} texts from column {text_column!r}, label "
        f"{label_column!r}, {len(vocabulary)} words, up to {max_length} tokens",
    )
