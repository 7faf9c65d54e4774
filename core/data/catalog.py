"""The catalogue of registered uploads: a row in the database's `datasets` table per upload,
and its files in one folder under settings.uploads_dir/<name>/ with a manifest.json beside them
(under the artifact root, STUDIO_ARTIFACTS; pushed to and pulled from it when it is remote).

The database says what is registered; the manifest lets a folder copied to another machine (or
registered before the store existed) be adopted again. These functions are the only place that
knows where upload records live.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import artifacts
from core.config import get_settings
from core.store import repository
from core.store.db import session_scope

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class UploadRecord:
    name: str
    kind: str  # "csv" | "images" | "text"
    options: dict[str, Any]  # parsing options it was registered with (label=, size=, ...)
    original_filename: str
    size_bytes: int
    created_at: str  # ISO 8601, UTC
    data_path: str  # the copy, relative to the upload's folder (e.g. "data/iris.csv")
    info: dict[str, Any] = field(default_factory=dict)  # DatasetInfo.to_dict() at defaults

    @property
    def folder(self) -> Path:
        return upload_folder(self.name)

    @property
    def source_path(self) -> Path:
        return self.folder / self.data_path


def upload_folder(name: str) -> Path:
    """The upload's local folder under the artifact root. On a remote root (STUDIO_ARTIFACTS
    URL) it is pulled from there the first time this machine reads it; an upload made before
    STUDIO_ARTIFACTS existed is still read from its old folder."""
    settings = get_settings()
    folder = settings.uploads_dir / name
    if folder.exists():
        return folder
    legacy = settings.legacy_uploads_dir / name
    if legacy.exists():
        return legacy
    if settings.artifacts_remote:
        artifacts.pull_folder(folder, "uploads", name)
    return folder


def write_manifest(folder: Path, record: UploadRecord) -> None:
    """Write the record into `folder` (atomically: temp file + rename)."""
    temporary = folder / f".{MANIFEST}.partial"
    temporary.write_text(json.dumps(asdict(record), indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temporary, folder / MANIFEST)


def publish(staging: Path, record: UploadRecord) -> None:
    """Move a finished staging folder into place and register it; on failure nothing remains."""
    folder = upload_folder(record.name)
    staging.rename(folder)  # fails if the name was taken meanwhile: never overwrites
    try:
        artifacts.push_folder(folder, "uploads", record.name)  # a remote root: every machine
        _describe_in_database(record)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _describe_in_database(record: UploadRecord) -> None:
    with session_scope() as session:
        repository.upsert_dataset_record(
            session=session,
            name=record.name,
            kind=record.kind,
            path=str(upload_folder(record.name)),
            options={"record": asdict(record)},
        )


def _read_manifest(folder: Path) -> UploadRecord | None:
    try:
        return UploadRecord(**json.loads((folder / MANIFEST).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # absent, or a folder that is not a finished upload


def get_record(name: str) -> UploadRecord | None:
    with session_scope(readonly=True) as session:
        row = repository.get_dataset_record(session=session, name=name)
        stored = None if row is None else dict(row.options.get("record", {}))
    if stored is not None:
        return UploadRecord(**stored)
    adopted = _read_manifest(upload_folder(name))
    if adopted is not None and adopted.name == name:
        _describe_in_database(adopted)
    return adopted


def list_records() -> list[UploadRecord]:
    with session_scope(readonly=True) as session:
        stored = [
            dict(r.options.get("record", {}))
            for r in repository.list_dataset_records(session=session)
        ]
    records = {r["name"]: UploadRecord(**r) for r in stored if r}
    root = get_settings().uploads_dir
    for name in artifacts.list_remote_folders("uploads"):  # pushed by another machine
        if name not in records:
            upload_folder(name)
    if root.is_dir():  # folders registered before the store existed, or copied in by hand
        for folder in sorted(root.iterdir()):
            if folder.name.startswith(".") or folder.name in records:
                continue
            adopted = _read_manifest(folder)
            if adopted is not None and adopted.name == folder.name:
                _describe_in_database(adopted)
                records[adopted.name] = adopted
    return sorted(records.values(), key=lambda r: r.name)


def delete_record(name: str) -> None:
    with session_scope() as session:
        repository.delete_dataset_record(session=session, name=name)
    shutil.rmtree(upload_folder(name), ignore_errors=True)
    if get_settings().artifacts_remote:
        artifacts.remove_tree("uploads", name)
