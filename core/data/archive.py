"""Zip archives read or extracted safely: no member leaves its folder, bombs are stopped.

Every member name is checked before a byte is read (no `../`, no absolute path, no symlink, no
encryption), the member count and the declared uncompressed total are capped, and the bytes
actually produced are counted while reading, because a header can lie about its size.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.errors import DataError

CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int
    max_bytes: int


class ByteBudget:
    """Counts bytes actually decompressed across an archive and stops at the limit."""

    def __init__(self, archive: Path, limits: ArchiveLimits) -> None:
        self.archive, self.limits, self.used = archive, limits, 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > self.limits.max_bytes:
            raise DataError(
                f"{self.archive.name} unpacks to more than {self.limits.max_bytes} bytes "
                "(STUDIO_MAX_ARCHIVE_MB); refusing it as a possible zip bomb"
            )


def member_path(archive: Path, info: zipfile.ZipInfo) -> PurePosixPath:
    """The member's relative path, or DataError if it is absolute, climbs out or is a link."""
    raw = info.filename
    name = raw.replace("\\", "/")
    path = PurePosixPath(name)
    if name.startswith("/") or (len(name) > 1 and name[0].isalpha() and name[1] == ":"):
        raise DataError(
            f"{archive.name}: member {raw!r} has an absolute path; members must be relative "
            "paths inside the archive's folder"
        )
    if ".." in path.parts:
        raise DataError(
            f"{archive.name}: member {raw!r} climbs out of its folder ('..'); members must stay "
            "inside the archive's folder"
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DataError(
            f"{archive.name}: member {raw!r} is a symbolic link; links are not accepted"
        )
    if info.flag_bits & 0x1:
        raise DataError(f"{archive.name}: member {raw!r} is encrypted; upload an unencrypted zip")
    return path


@contextmanager
def open_zip(archive: Path, limits: ArchiveLimits) -> Iterator[tuple[zipfile.ZipFile, list]]:
    """(zip, [(path, info) of every member]) after each member passed the checks above."""
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise DataError(f"{archive.name} is not a readable zip archive: {error}") from None
    with bundle:
        infos = bundle.infolist()
        if len(infos) > limits.max_files:
            raise DataError(
                f"{archive.name} has {len(infos)} members, over the limit of {limits.max_files} "
                "(STUDIO_MAX_ARCHIVE_FILES)"
            )
        members = [(member_path(archive, info), info) for info in infos]
        declared = sum(info.file_size for info in infos)
        if declared > limits.max_bytes:
            raise DataError(
                f"{archive.name} declares {declared} bytes uncompressed, over the limit of "
                f"{limits.max_bytes} (STUDIO_MAX_ARCHIVE_MB)"
            )
        yield bundle, members


def read_member(
    bundle: zipfile.ZipFile, info: zipfile.ZipInfo, budget: ByteBudget
) -> Iterator[bytes]:
    """The member's bytes in chunks, counted against the budget and its declared size."""
    produced = 0
    try:
        with bundle.open(info) as stream:
            while chunk := stream.read(CHUNK):
                produced += len(chunk)
                if produced > info.file_size:
                    raise DataError(
                        f"{budget.archive.name}: member {info.filename!r} is larger than its "
                        "header declares; the archive is damaged or hostile"
                    )
                budget.take(len(chunk))
                yield chunk
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
        raise DataError(
            f"{budget.archive.name}: member {info.filename!r} is unreadable: {error}"
        ) from None


def extract_zip(archive: Path, destination: Path, limits: ArchiveLimits) -> list[Path]:
    """Extract into `destination` (which must not exist yet); returns the files written.

    On any refusal the caller removes `destination`; nothing is ever written outside it.
    """
    destination.mkdir(parents=True, exist_ok=False)
    root = destination.resolve()
    written: list[Path] = []
    budget = ByteBudget(archive, limits)
    with open_zip(archive, limits) as (bundle, members):
        for path, info in members:
            target = (root / Path(*path.parts)).resolve() if path.parts else root
            if not target.is_relative_to(root) or target == root:
                raise DataError(
                    f"{archive.name}: member {info.filename!r} lands outside its folder"
                )
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                output = open(target, "xb")  # noqa: SIM115 - closed below; "x": never overwrite
            except FileExistsError:
                raise DataError(f"{archive.name}: member {info.filename!r} appears twice") from None
            with output:
                for chunk in read_member(bundle, info, budget):
                    output.write(chunk)
            written.append(target)
    return written
