"""Uploads: `csv:PATH`, `images:PATH`, `text:PATH` (options after `?`), and registering them.

`csv:data/houses.csv?label=price&task=regression` loads a file in place. `register_upload`
checks a file completely, then copies it under settings.uploads_dir/<name>/ with a manifest, so
it can be loaded by name later. A refused upload leaves nothing behind.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from core.config import get_settings
from core.data import catalog
from core.data.archive import ArchiveLimits, extract_zip
from core.data.dataset import Dataset, DatasetInfo
from core.errors import DataError

KINDS = ("csv", "images", "text")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    kind: str  # "str" | "bool" | "int" | "choice"
    default: Any
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    help: str = ""


OPTIONS: dict[str, dict[str, Option]] = {
    "csv": {
        "label": Option(
            "str", None, help="label column (default: label/target/class/y, else last)"
        ),
        "sequence": Option("bool", False, help="each row is one 1-D signal (sample shape 1xN)"),
        "task": Option("choice", "auto", choices=("auto", "classification", "regression")),
    },
    "images": {
        "size": Option("int", 32, minimum=4, maximum=512, help="images are resized to size x size"),
        "channels": Option("choice", "auto", choices=("auto", "1", "3"), help="1 gray, 3 RGB"),
    },
    "text": {
        "text": Option(
            "str", None, help="text column (default: text/sentence/review/..., else first)"
        ),
        "label": Option(
            "str", None, help="label column (default: label/target/class/y, else last)"
        ),
        "max_length": Option("int", 64, minimum=1, maximum=4096, help="tokens kept per text"),
        "min_freq": Option("int", 1, minimum=1, maximum=1_000_000, help="rarer words are <unk>"),
        "max_vocab": Option("int", 20000, minimum=3, maximum=1_000_000, help="incl. <pad>, <unk>"),
        "task": Option("choice", "auto", choices=("auto", "classification", "regression")),
    },
}


def parse_name(name: str) -> tuple[str, Path, dict[str, str]]:
    """'csv:PATH?label=y' -> ('csv', Path('PATH'), {'label': 'y'})."""
    kind, _, rest = name.partition(":")
    path_text, _, query = rest.partition("?")
    if not path_text:
        raise DataError(f"{name!r} names no file; write {kind}:PATH")
    try:
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise DataError(f"{name!r}: options after '?' must look like key=value&key=value") from None
    return kind, Path(path_text).expanduser(), options


def coerce_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """Typed options with defaults filled in; unknown names and bad values are refused."""
    schema = OPTIONS[kind]
    unknown = sorted(set(options) - set(schema))
    if unknown:
        raise DataError(
            f"unknown {kind} option {unknown[0]!r}; {kind} uploads take: {', '.join(schema)}"
        )
    typed: dict[str, Any] = {}
    for key, option in schema.items():
        value = options.get(key, option.default)
        typed[key] = value if value is None else _coerce(kind, key, option, value)
    if kind == "images" and typed["channels"] != "auto":
        typed["channels"] = int(typed["channels"])
    return typed


def _coerce(kind: str, key: str, option: Option, value: Any) -> Any:
    text = str(value).strip()
    if option.kind == "str":
        return text
    if option.kind == "bool":
        if isinstance(value, bool) or text.lower() in TRUE | FALSE:
            return value if isinstance(value, bool) else text.lower() in TRUE
        raise DataError(f"{kind} option {key}={value!r} must be true or false")
    if option.kind == "choice":
        if text not in option.choices:
            raise DataError(
                f"{kind} option {key}={value!r} must be one of {', '.join(option.choices)}"
            )
        return text
    try:
        number = int(text)
    except ValueError:
        raise DataError(f"{kind} option {key}={value!r} must be a whole number") from None
    if not option.minimum <= number <= option.maximum:
        raise DataError(
            f"{kind} option {key}={number} is out of range; use {option.minimum}..{option.maximum}"
        )
    return number


def limits() -> ArchiveLimits:
    settings = get_settings()
    return ArchiveLimits(max_files=settings.max_archive_files, max_bytes=settings.max_archive_bytes)


def check_source(kind: str, path: Path) -> int:
    """The upload's size in bytes, after refusing a missing, mis-shaped or too large source."""
    if not path.exists():
        raise DataError(f"{path} does not exist")
    if path.is_symlink():
        raise DataError(f"{path} is a symbolic link; upload the file itself")
    if kind in ("csv", "text") and not path.is_file():
        raise DataError(f"{path} is not a file; {kind}: uploads take one CSV file")
    if kind == "images" and not (path.is_dir() or path.suffix.lower() == ".zip"):
        raise DataError(f"{path} is neither a folder nor a .zip archive of class folders")
    if path.is_dir():
        # anywhere, hidden folders included: the whole folder is copied into the dataset
        link = next((p for p in path.rglob("*") if p.is_symlink()), None)
        if link is not None:
            raise DataError(
                f"{path.name}: {link.relative_to(path).as_posix()!r} is a symbolic link; links "
                "are not accepted in an upload (hidden folders included): copy the files in"
            )
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    else:
        size = path.stat().st_size
    limit = get_settings().max_upload_bytes
    if size > limit:
        raise DataError(
            f"{path.name} is {size / 2**20:.1f} MB, over the upload limit of {limit / 2**20:.0f} MB "
            "(STUDIO_MAX_UPLOAD_MB)"
        )
    return size


def load_source(
    kind: str, path: Path, options: dict[str, Any], *, name: str, val_fraction: float, seed: int
) -> Dataset:
    """Parse an upload from where it lies; `options` must come from `coerce_options`."""
    from core.data.images import load_images_dataset
    from core.data.tabular import load_csv_dataset
    from core.data.text import load_text_dataset

    check_source(kind, path)
    common = {"name": name, "val_fraction": val_fraction, "seed": seed}
    if kind == "csv":
        return load_csv_dataset(path, **common, **options)
    if kind == "text":
        return load_text_dataset(path, **common, **options)
    return load_images_dataset(path, **common, limits=limits(), **options)


def load_named_source(name: str, *, val_fraction: float, seed: int) -> Dataset:
    """`csv:PATH?opt=value` and friends, loaded in place without registering."""
    kind, path, raw_options = parse_name(name)
    return load_source(
        kind,
        path,
        coerce_options(kind, raw_options),
        name=name,
        val_fraction=val_fraction,
        seed=seed,
    )


def load_registered(record: catalog.UploadRecord, *, val_fraction: float, seed: int) -> Dataset:
    options = coerce_options(record.kind, record.options)
    dataset = load_source(
        record.kind,
        record.source_path,
        options,
        name=record.name,
        val_fraction=val_fraction,
        seed=seed,
    )
    return dataset


def _default_name(source: Path, taken: set[str]) -> str:
    stem = source.name.removesuffix(".zip").rsplit(".", 1)[0] if source.is_file() else source.name
    base = re.sub(r"[^a-z0-9_.-]+", "-", stem.lower()).strip("-._")[:56] or "upload"
    name, counter = base, 2
    while name in taken:
        name, counter = f"{base}-{counter}", counter + 1
    return name


def check_new_name(name: str, taken: set[str]) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise DataError(
            f"dataset name {name!r} is not allowed; use 1-64 lowercase letters, digits, '-', '_' "
            "or '.', starting with a letter or digit"
        )
    if name in taken:
        raise DataError(
            f"a dataset named {name!r} already exists; choose another name or remove it"
        )
    return name


def register_upload(
    kind: str, source_path: str | Path, *, name: str | None = None, taken: set[str], **options: Any
) -> DatasetInfo:
    """Check an upload completely, then copy it under uploads_dir/<name>/ with a manifest."""
    if kind not in KINDS:
        raise DataError(f"unknown upload kind {kind!r}; use one of {', '.join(KINDS)}")
    source = Path(source_path).expanduser()
    typed = coerce_options(kind, options)
    size = check_source(kind, source)
    name = check_new_name(name, taken) if name is not None else _default_name(source, taken)
    dataset = load_source(kind, source, typed, name=name, val_fraction=0.1, seed=0)  # validates
    folder = catalog.upload_folder(name)
    staging = folder.with_name(f".staging-{name}-{uuid.uuid4().hex[:8]}")
    data_path = "data" if source.is_dir() or kind == "images" else f"data/{source.name}"
    record = catalog.UploadRecord(
        name=name,
        kind=kind,
        options={k: v for k, v in typed.items() if v is not None},
        original_filename=source.name,
        size_bytes=size,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        data_path=data_path,
        info=dataset.info().to_dict(),
    )
    try:
        staging.mkdir(parents=True)
        if source.is_dir():
            shutil.copytree(source, staging / "data", symlinks=True)  # none: checked above
        elif kind == "images":
            extract_zip(source, staging / "data", limits())
        else:
            (staging / "data").mkdir()
            shutil.copyfile(source, staging / data_path)
        catalog.write_manifest(staging, record)
        catalog.publish(staging, record)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise DataError(f"could not store upload {name!r} in {folder}: {error}") from None
        raise
    return info_from_record(record)


def info_from_record(record: catalog.UploadRecord) -> DatasetInfo:
    """The DatasetInfo saved at registration (split sizes at val_fraction=0.1, seed 0)."""
    known = {f.name for f in fields(DatasetInfo)}
    info = {key: value for key, value in record.info.items() if key in known}
    info["sample_shape"] = tuple(info.get("sample_shape", ()))
    info["name"], info["source"] = record.name, "upload"
    return DatasetInfo(**info)
