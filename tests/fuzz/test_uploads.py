"""Property: an upload, however hostile its names and contents, is registered whole or refused
with one DataError line; nothing is written outside the studio's upload folder, no staging
folder is left behind, and no message leaks a Python object's repr."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.data import register_upload
from core.errors import DataError
from tests.core.data.conftest import snapshot

# one STUDIO_HOME for every example on purpose: uploads pile up there as they would for a person
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

HOSTILE_NAMES = [
    "../evil.png",
    "cat/../../evil.png",
    "/tmp/evil.png",
    "C:/evil.png",
    "cat\\..\\..\\evil.png",
    "![x](http://127.0.0.1:1/x).png",
    "cat/<img src=x>.png",
    "cat/\u202e.png",
    "cat/" + "a" * 300 + ".png",
    "cat/.hidden/x.png",
    "cat/",
    "",
]


def png(size: int = 4, value: int = 0) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (value, value, value)).save(buffer, format="PNG")
    return buffer.getvalue()


member_names = st.sampled_from(HOSTILE_NAMES) | st.builds(
    lambda folder, stem: f"{folder}/{stem}.png",
    st.sampled_from(["cat", "dog", "![a](http://x)", "ü", "."]),
    st.text(min_size=1, max_size=12),
)
member_bytes = st.sampled_from([png(), png(value=200), b"", b"\x89PNG\r\n\x1a\n", b"not an image"])
members = st.lists(st.tuples(member_names, member_bytes), min_size=1, max_size=8)

cells = st.sampled_from(["1", "-2.5", "1e300", "nan", "", "![x](http://x)", '"', "a,b", "1\n2"])
tables = st.lists(st.lists(cells, min_size=3, max_size=3), min_size=1, max_size=12)
headers = st.lists(
    st.sampled_from(["x", "y", "label", "![c](http://x)", "", "x", "<b>", "é"]),
    min_size=3,
    max_size=3,
)


def registered_or_refused(kind: str, source: Path, studio_home: Path) -> None:
    outside = source.parent
    before_outside = snapshot(outside)
    try:
        register_upload(kind, source)
    except DataError as error:
        message = str(error)
        assert message and "\n" not in message, message
        assert " object at 0x" not in message and "Traceback" not in message, message
    assert snapshot(outside) == before_outside  # nothing written beside the upload
    written = snapshot(studio_home)
    assert not [p for p in written if ".staging-" in p], written
    assert all(p == "datasets" or p.startswith(("datasets/", "logs")) for p in written), written


@pytest.mark.filterwarnings("ignore:Duplicate name")  # two members of one name: hostile too
@FUZZ
@given(members)
def test_hostile_image_archives_are_stored_whole_or_refused_in_one_line(studio_home, entries):
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "upload.zip"
        with zipfile.ZipFile(archive, "w") as bundle:
            for name, data in entries:
                if name:
                    bundle.writestr(name, data)
        registered_or_refused("images", archive, studio_home)


@FUZZ
@given(headers, tables)
def test_hostile_csv_files_are_stored_whole_or_refused_in_one_line(studio_home, header, rows):
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "table.csv"
        lines = [",".join(header)] + [",".join(row) for row in rows]
        table.write_text("\n".join(lines) + "\n", encoding="utf-8")
        registered_or_refused("csv", table, studio_home)
