"""The artifact root every worker can reach: checkpoints, uploads, exports (STUDIO_ARTIFACTS).

The root is a local folder (default `$STUDIO_HOME/artifacts`; a network mount shared by several
machines works as it is) or an fsspec URL (`s3://bucket/studio` with `s3fs` installed, `gs://`
with `gcsfs`, ...). A *location* is what the database records for a file: a plain path for a
local root, a URL for a remote one, so any worker on the same database finds it.

Writes are atomic where the backend allows: on a local or mounted folder a temporary file in
the same folder is fsynced and renamed over the target; on an object store the file is written
locally first and uploaded in one PUT, which stores the object whole or not at all.
Uploaded datasets are folders: on a remote root they are pushed whole after they are checked
and pulled into `$STUDIO_HOME/artifacts/uploads` by a machine that reads them first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from core.config import get_settings
from core.errors import SettingsError


def is_remote(location: str | os.PathLike[str]) -> bool:
    """True for a URL fsspec must open (s3://, memory://); False for a path or file:// URL."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def location(*parts: str) -> str:
    """The location of `parts` under the artifact root: a path, or a URL on a remote root."""
    settings = get_settings()
    if settings.artifacts_remote:
        return "/".join([settings.artifacts_url.rstrip("/"), *parts])
    return str(settings.artifacts_dir.joinpath(*parts))


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        protocol = url.split("://", 1)[0]
        raise SettingsError(
            f"STUDIO_ARTIFACTS={get_settings().artifacts_url!r}: cannot open {protocol}:// URLs "
            f"({error}); install the fsspec backend for it (s3fs for s3://, gcsfs for gs://) "
            "or use a local or mounted folder"
        ) from None


def write_atomic(target: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> str:
    """Write a file through `write(handle)`, atomically; returns its location. A failure leaves
    the previous file (if any) untouched and no temporary file behind."""
    if is_remote(target):
        fs, path = _filesystem(str(target))
        with tempfile.TemporaryDirectory(prefix="studio-upload-") as folder:
            staged = Path(folder) / "file"
            with staged.open("wb") as handle:
                write(handle)
            parent = path.rsplit("/", 1)[0]
            fs.makedirs(parent, exist_ok=True)
            fs.put_file(str(staged), path)
        return str(target)
    local = Path(str(target).removeprefix("file://"))
    local.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{local.name}.", suffix=".tmp", dir=local.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, local)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(local.parent)
    return str(local)


def _fsync_dir(folder: Path) -> None:
    # makes the rename itself durable; not possible on every platform, harmless to skip there
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def exists(target: str | os.PathLike[str]) -> bool:
    if is_remote(target):
        fs, path = _filesystem(str(target))
        return bool(fs.isfile(path))
    return Path(str(target).removeprefix("file://")).is_file()


@contextlib.contextmanager
def open_read(target: str | os.PathLike[str]) -> Iterator[IO[bytes]]:
    """A binary handle on an artifact, local or remote (FileNotFoundError when absent)."""
    if is_remote(target):
        fs, path = _filesystem(str(target))
        with fs.open(path, "rb") as handle:
            yield handle
        return
    with open(str(target).removeprefix("file://"), "rb") as handle:
        yield handle


def remove(target: str | os.PathLike[str]) -> None:
    """Delete one artifact file; nothing when it is already gone."""
    if is_remote(target):
        fs, path = _filesystem(str(target))
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)
        return
    Path(str(target).removeprefix("file://")).unlink(missing_ok=True)


def remove_tree(*parts: str) -> None:
    """Delete a folder under the artifact root (a run's checkpoints, an upload)."""
    target = location(*parts)
    if is_remote(target):
        fs, path = _filesystem(target)
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path, recursive=True)
        return
    shutil.rmtree(target, ignore_errors=True)


def push_folder(local: Path, *parts: str) -> None:
    """Copy a finished local folder to the remote root (a no-op on a local root, where the
    folder already is the artifact). Its manifest.json goes last: a reader that sees the
    manifest sees every file."""
    target = location(*parts)
    if not is_remote(target):
        return
    fs, path = _filesystem(target)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == "manifest.json")
    for file in files:
        remote = f"{path}/{file.relative_to(local).as_posix()}"
        fs.makedirs(remote.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(file), remote)


def pull_folder(local: Path, *parts: str) -> bool:
    """Copy a folder from the remote root into `local` (atomically: staged, then renamed) when
    it is there and `local` is not; True when `local` now exists."""
    if local.exists():
        return True
    source = location(*parts)
    if not is_remote(source):
        return False
    fs, path = _filesystem(source)
    if not fs.isfile(f"{path}/manifest.json"):
        return False
    local.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".pull-{local.name}-", dir=local.parent))
    try:
        for remote in fs.find(path):
            relative = remote[len(path.rstrip("/")) + 1 :]
            destination = staging / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(destination))
        with contextlib.suppress(OSError):  # another process pulled it meanwhile
            staging.rename(local)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return local.exists()


def list_remote_folders(*parts: str) -> list[str]:
    """Names of the folders directly under `parts` on a remote root ([] on a local root)."""
    target = location(*parts)
    if not is_remote(target):
        return []
    fs, path = _filesystem(target)
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        return []
    return sorted(
        e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if e["type"] == "directory"
    )
