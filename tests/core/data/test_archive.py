"""Zip safety: members that climb out, absolute paths, symlinks, bombs; safe extraction."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from core.config import get_settings
from core.data import load_dataset, register_upload
from core.data.archive import ArchiveLimits, ByteBudget, extract_zip, open_zip, read_member
from core.errors import DataError
from tests.core.data.conftest import snapshot

LIMITS = ArchiveLimits(max_files=100, max_bytes=10 * 2**20)


def png_bytes(value: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


def good_members() -> dict[str, bytes]:
    return {f"{c}/{i}.png": png_bytes(i * 40) for c in ("cat", "dog") for i in range(3)}


def write_zip(
    path: Path, members: dict[str, bytes], *, links: dict[str, str] | None = None
) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, data in members.items():
            bundle.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            bundle.writestr(info, target)
    return path


HOSTILE = [
    (
        "climb",
        {"cat/../../evil.png": png_bytes()},
        None,
        r"member 'cat/../../evil.png' climbs out of its folder",
    ),
    (
        "absolute",
        {"/tmp/evil.png": png_bytes()},
        None,
        r"member '/tmp/evil.png' has an absolute path",
    ),
    ("drive", {"C:/evil.png": png_bytes()}, None, r"member 'C:/evil.png' has an absolute path"),
    ("backslash", {"cat\\..\\..\\evil.png": png_bytes()}, None, r"climbs out of its folder"),
    ("symlink", {}, {"cat/link.png": "/etc/passwd"}, r"member 'cat/link.png' is a symbolic link"),
]


@pytest.mark.parametrize(("case", "extra", "links", "message"), HOSTILE)
def test_hostile_members_refused_nothing_written(
    tmp_path: Path, studio_home: Path, case: str, extra: dict, links: dict | None, message: str
) -> None:
    archive = write_zip(tmp_path / "pets.zip", good_members() | extra, links=links)
    before_home, before_tmp = snapshot(studio_home), snapshot(tmp_path)
    with pytest.raises(DataError, match=message):
        register_upload("images", archive)
    with pytest.raises(DataError, match=message):
        load_dataset(f"images:{archive}")
    destination = tmp_path / "out" / "data"
    with pytest.raises(DataError, match=message):
        extract_zip(archive, destination, LIMITS)
    assert snapshot(destination) == set()  # refused before a single member was written
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "out" / "evil.png").exists()
    assert snapshot(studio_home) == before_home
    assert snapshot(tmp_path) - {"out", "out/data"} == before_tmp
    assert not get_settings().uploads_dir.exists()


def test_too_many_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_MAX_ARCHIVE_FILES", "5")
    archive = write_zip(tmp_path / "pets.zip", good_members())
    with pytest.raises(
        DataError, match=r"pets.zip has 6 members, over the limit of 5 \(STUDIO_MAX_ARCHIVE_FILES\)"
    ):
        register_upload("images", archive)
    assert not get_settings().uploads_dir.exists()


def test_zip_bomb_by_declared_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STUDIO_MAX_ARCHIVE_MB", "1")
    archive = write_zip(tmp_path / "bomb.zip", good_members() | {"cat/zeros.png": bytes(3 * 2**20)})
    assert archive.stat().st_size < 20_000  # tiny on disk, 3 MB unpacked
    with pytest.raises(
        DataError, match=r"bomb.zip declares \d+ bytes uncompressed, over the limit of 1048576"
    ):
        register_upload("images", archive)
    assert not get_settings().uploads_dir.exists()


def test_actual_bytes_are_counted_while_reading(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "pets.zip", {"cat/zeros.bin": bytes(3 * 2**20)})
    small = ArchiveLimits(max_files=10, max_bytes=2**20)
    with zipfile.ZipFile(archive) as bundle:
        info = bundle.infolist()[0]
        with pytest.raises(DataError, match=r"pets.zip unpacks to more than 1048576 bytes"):
            for _ in read_member(bundle, info, ByteBudget(archive, small)):
                pass


def lie_about_size(archive: Path, member: str, declared: int) -> None:
    """Rewrite the central directory's uncompressed size of one member."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as bundle:
        info = bundle.getinfo(member)
    central = data.find(b"PK\x01\x02")  # central directory entries
    while central != -1:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        name = bytes(data[central + 46 : central + 46 + name_length]).decode()
        if name == info.filename:
            struct.pack_into("<I", data, central + 24, declared)
        central = data.find(b"PK\x01\x02", central + 4)
    archive.write_bytes(bytes(data))


def test_member_larger_than_its_header_declares_is_refused(tmp_path: Path) -> None:
    members = good_members() | {"cat/big.png": png_bytes(7) + bytes(50_000)}
    archive = write_zip(tmp_path / "liar.zip", members)
    lie_about_size(archive, "cat/big.png", 100)
    with pytest.raises(
        DataError, match=r"liar.zip: member 'cat/big.png' (is unreadable|is larger)"
    ):
        load_dataset(f"images:{archive}")
    with pytest.raises(DataError, match=r"member 'cat/big.png'"):
        extract_zip(archive, tmp_path / "out", LIMITS)


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"this is not a zip")
    with pytest.raises(DataError, match=r"fake.zip is not a readable zip archive"):
        load_dataset(f"images:{fake}")


def test_extract_writes_only_inside_destination(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "pets.zip", good_members())
    written = extract_zip(archive, tmp_path / "out", LIMITS)
    assert len(written) == 6
    assert all(p.is_relative_to((tmp_path / "out").resolve()) for p in written)
    with open_zip(archive, LIMITS) as (_, members):
        assert [str(path) for path, _ in members][:2] == ["cat/0.png", "cat/1.png"]
