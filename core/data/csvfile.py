"""Reading an uploaded CSV into checked columns, with errors that name the column and row.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.config import get_settings
from core.errors import DataError

MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}  # cells read as "no value"
LABEL_NAMES = ("label", "target", "class", "y")  # a column with one of these names is the label
REGRESSION_MIN_DISTINCT = 20  # an integer label with more distinct values than this is a target
# models compute in float32: a value beyond its range becomes infinity and the run "diverges"
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Table:
    path: Path
    columns: list[str]
    rows: list[list[str]]  # data rows only, each as long as `columns`

    def column(self, name: str) -> list[str]:
        position = self.columns.index(name)
        return [row[position] for row in self.rows]


def decode_text(path: Path) -> str:
    """The file as text; anything but UTF-8 is refused with what to do about it."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        bad, row = data[error.start], data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path.name} is not UTF-8 text (row {row}: byte 0x{bad:02x} at offset {error.start}); "
            "save it as UTF-8 (in Excel: 'CSV UTF-8') and upload it again"
        ) from None


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    for candidate in (";", "\t"):
        if candidate in header_line:
            return candidate
    return ","


def read_table(path: Path) -> Table:
    """Parse a CSV with a header row; refuse empty files, ragged rows and blank headers."""
    text = decode_text(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise DataError(f"{path.name} is empty; expected a header row and at least one data row")
    field_limit = get_settings().max_text_field_bytes
    csv.field_size_limit(field_limit)  # the module's limit is process-wide; set it each read
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(lines[0]))
    try:
        header = [name.strip() for name in next(reader)]
        rows: list[list[str]] = []
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue  # blank lines are not rows
            if len(row) != len(header):
                raise DataError(
                    f"{path.name} row {reader.line_num} has {len(row)} fields but the header "
                    f"has {len(header)} ({', '.join(header)}); every row needs one value per column"
                )
            rows.append([cell.strip() for cell in row])
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            raise DataError(
                f"{path.name} row {reader.line_num}: a cell is longer than the limit of "
                f"{field_limit // 1024} KB per cell; shorten it, or raise the limit with the "
                "setting STUDIO_MAX_TEXT_FIELD_KB"
            ) from None
        raise DataError(
            f"{path.name} is not a readable CSV (row {reader.line_num}): {error}"
        ) from None
    for position, name in enumerate(header):
        if not name:
            raise DataError(f"{path.name}: column {position + 1} has no name in the header row")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataError(f"{path.name}: the header names {', '.join(duplicates)} more than once")
    if not rows:
        raise DataError(f"{path.name} has a header but no rows; add at least one data row")
    return Table(path=path, columns=header, rows=rows)


def choose_column(
    table: Table, requested: str | None, *, role: str, exclude: tuple[str, ...] = ()
) -> str:
    """The column for `role` ("label", "text"): the one asked for, else one named like it."""
    candidates = [c for c in table.columns if c not in exclude]
    if requested is not None:
        if requested not in table.columns:
            raise DataError(
                f"{table.path.name} has no column {requested!r} for the {role}; "
                f"columns: {', '.join(table.columns)}"
            )
        return requested
    names = LABEL_NAMES if role == "label" else ()
    for column in candidates:
        if column.strip().lower() in names:
            return column
    if not candidates:
        raise DataError(f"{table.path.name} has no column left for the {role}")
    return candidates[-1]


def _is_missing(cell: str) -> bool:
    return cell.strip().lower() in MISSING


def _missing_error(table: Table, column: str, row_index: int) -> DataError:
    return DataError(
        f"{table.path.name}: column {column!r} has no value in row {row_index + 2} (row 1 is the "
        "header); fill in a value or remove the row"
    )


def check_complete(table: Table, columns: list[str]) -> None:
    """Refuse the first missing value, naming its column and row."""
    positions = [table.columns.index(c) for c in columns]
    for row_index, row in enumerate(table.rows):
        for column, position in zip(columns, positions, strict=True):
            if _is_missing(row[position]):
                raise _missing_error(table, column, row_index)


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check_float32_range(table: Table, column: str, numbers: list[float | None]) -> None:
    """Refuse the first value a float32 cannot hold (beyond ±3.4e38), naming column and row."""
    for row_index, number in enumerate(numbers):
        if number is not None and abs(number) > FLOAT32_MAX:
            raise DataError(
                f"{table.path.name}: column {column!r} holds {table.column(column)[row_index]} in "
                f"row {row_index + 2}, beyond what the model computes with (float32: at most "
                f"±{FLOAT32_MAX:.2e}); rescale the column (e.g. use its logarithm) or fix the value"
            )


def numeric_column(table: Table, column: str) -> np.ndarray:
    """A feature column as float64; text anywhere in it is refused with the row that holds it,
    and so is a number beyond float32's range."""
    values = table.column(column)
    numbers = [_number(cell) for cell in values]
    text_rows = [i for i, n in enumerate(numbers) if n is None]
    if not text_rows:
        check_float32_range(table, column, numbers)
        return np.asarray(numbers, dtype=np.float64)
    first_text = text_rows[0]
    number_rows = [i for i, n in enumerate(numbers) if n is not None]
    if number_rows:
        first_number = number_rows[0]
        raise DataError(
            f"{table.path.name}: column {column!r} mixes numbers and text: row {first_text + 2} "
            f"holds {values[first_text]!r} while row {first_number + 2} holds "
            f"{values[first_number]!r}; a feature column must hold only numbers"
        )
    raise DataError(
        f"{table.path.name}: column {column!r} holds text ({values[first_text]!r} in row "
        f"{first_text + 2}); feature columns must hold numbers: encode it as numbers or remove "
        f"it, or if it holds the classes make it the label with ?label={column} after the file "
        "name"
    )


def labels_from(
    table: Table, column: str, *, task: str = "auto"
) -> tuple[str, np.ndarray, list[str]]:
    """(task, y, class_names) from a label column.

    Numbers with a fractional part, or integers with more than REGRESSION_MIN_DISTINCT distinct
    values, make a regression target unless `task` says otherwise; anything else is a class.
    """
    values = table.column(column)
    numbers = [_number(cell) for cell in values]
    numeric = all(n is not None for n in numbers)
    if task == "auto":
        if numeric:
            integral = all(float(n).is_integer() for n in numbers)
            distinct = len(set(numbers))
            task = (
                "classification"
                if integral and distinct <= REGRESSION_MIN_DISTINCT
                else "regression"
            )
        else:
            task = "classification"
    if task == "regression":
        if not numeric:
            row = next(i for i, n in enumerate(numbers) if n is None)
            raise DataError(
                f"{table.path.name}: label column {column!r} holds {values[row]!r} in row {row + 2}; "
                "a regression target must be a number in every row"
            )
        check_float32_range(table, column, numbers)
        return task, np.asarray(numbers, dtype=np.float32), []
    if numeric:
        distinct_numbers = sorted(set(numbers))
        class_names = [_format_number(n) for n in distinct_numbers]
        lookup = {n: i for i, n in enumerate(distinct_numbers)}
        y = np.asarray([lookup[n] for n in numbers], dtype=np.int64)
    else:
        class_names = sorted(set(values))
        lookup_text = {name: i for i, name in enumerate(class_names)}
        y = np.asarray([lookup_text[v] for v in values], dtype=np.int64)
    if len(class_names) < 2:
        raise DataError(
            f"{table.path.name}: label column {column!r} holds a single class "
            f"({class_names[0]!r}) in all {len(values)} rows; a classifier needs at least two "
            "classes"
        )
    return task, y, class_names


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
