"""The catalogue of registered uploads: one folder per upload with a manifest.json.

These four functions are the only place that knows where upload records live, so they can be
backed by the database later while the files stay under settings.uploads_dir/<name>/.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.config import get_settings

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
    return get_settings().uploads_dir / name


def write_manifest(folder: Path, record: UploadRecord) -> None:
    """Write the record into `folder` (atomically: temp file + rename)."""
    temporary = folder / f".{MANIFEST}.partial"
    temporary.write_text(json.dumps(asdict(record), indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temporary, folder / MANIFEST)


def get_record(name: str) -> UploadRecord | None:
    path = upload_folder(name) / MANIFEST
    try:
        return UploadRecord(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None  # absent, or a folder that is not a finished upload


def list_records() -> list[UploadRecord]:
    root = get_settings().uploads_dir
    if not root.is_dir():
        return []
    records = (get_record(p.name) for p in sorted(root.iterdir()) if not p.name.startswith("."))
    return [r for r in records if r is not None]


def delete_record(name: str) -> None:
    shutil.rmtree(upload_folder(name), ignore_errors=True)
