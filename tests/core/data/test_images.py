"""`images:` uploads from a folder or a zip: round trips and refused inputs."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from core.config import get_settings
from core.data import load_dataset, register_upload
from core.errors import DataError
from tests.core.data.conftest import snapshot, write_image_folder


def zip_folder(folder: Path, archive: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as bundle:
        for path in sorted(folder.rglob("*")):
            bundle.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def test_folder_round_trip_rgb(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets", {"cat": 6, "dog": 5, "owl": 4})
    dataset = load_dataset(f"images:{root}?size=16")
    assert dataset.modality == "image" and dataset.sample_shape == (3, 16, 16)
    assert dataset.class_names == ["cat", "dog", "owl"]
    assert sum(dataset.sizes.values()) == 15 and dataset.sizes["test"] == 3
    assert dataset.normalization.mean.shape == (3, 1, 1)
    picture = dataset.human(dataset.train.x[0])
    assert picture.shape == (16, 16, 3) and picture.dtype == np.uint8
    # the picture comes back as drawn: one flat colour per file
    files = dataset.extras["files"]
    original = Image.open(root / files[int(dataset.train.indices[0])]).convert("RGB")
    expected = np.asarray(original.resize((16, 16)))
    assert np.abs(picture.astype(int) - expected.astype(int)).max() <= 1


def test_grayscale_auto_and_forced_channels(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "gray", {"a": 4, "b": 4}, mode="L")
    assert load_dataset(f"images:{root}").sample_shape == (1, 32, 32)
    assert load_dataset(f"images:{root}?channels=3&size=8").sample_shape == (3, 8, 8)
    colour = write_image_folder(tmp_path / "colour", {"a": 4, "b": 4})
    assert load_dataset(f"images:{colour}?channels=1&size=8").sample_shape == (1, 8, 8)


def test_zip_round_trip_with_wrapper_folder(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets", {"cat": 5, "dog": 5})
    archive = zip_folder(root, tmp_path / "pets.zip", prefix="pets/")
    from_zip = load_dataset(f"images:{archive}?size=8")
    from_folder = load_dataset(f"images:{root}?size=8")
    assert from_zip.class_names == ["cat", "dog"]
    assert torch.equal(from_zip.train.x, from_folder.train.x)


def test_split_determinism(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets", {"cat": 10, "dog": 10}, size=4)
    first, again = (
        load_dataset(f"images:{root}?size=4", seed=1),
        load_dataset(f"images:{root}?size=4", seed=1),
    )
    other = load_dataset(f"images:{root}?size=4", seed=3)
    assert torch.equal(first.val.indices, again.val.indices)
    assert not torch.equal(first.val.indices, other.val.indices)


def bad_folder(tmp_path: Path, case: str) -> Path:
    root = write_image_folder(tmp_path / "pets", {"cat": 3, "dog": 3}, size=4)
    if case == "corrupt":
        (root / "dog" / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    elif case == "not_an_image":
        (root / "cat" / "notes.txt").write_text("hello")
    elif case == "empty_class":
        (root / "owl").mkdir()
    elif case == "one_class":
        for path in (root / "dog").iterdir():
            path.unlink()
        (root / "dog").rmdir()
    elif case == "loose_file":
        Image.new("RGB", (4, 4)).save(root / "stray.png")
    elif case == "symlink":
        (root / "cat" / "link.png").symlink_to(root / "dog" / "0.png")
    return root


BAD_IMAGE_CASES = [
    ("corrupt", r"'dog/2.png' could not be read as an image"),
    ("not_an_image", r"pets: 'cat/notes.txt' is not an image; class folders may only hold .png"),
    ("empty_class", r"pets: class folder 'owl' has no images"),
    ("one_class", r"pets needs at least two class folders .*found only 'cat'"),
    ("loose_file", r"pets: 'stray.png' is not inside a class folder"),
    ("symlink", r"pets: 'cat/link.png' is a symbolic link"),
]
PACKED_CASES = [  # zip symlinks are refused by the archive checks (test_archive)
    (case, message.replace("pets:", "pets.zip:").replace("pets needs", "pets.zip needs"))
    for case, message in BAD_IMAGE_CASES
    if case != "symlink"
]


@pytest.mark.parametrize(
    ("packing", "case", "message"),
    [("folder", *c) for c in BAD_IMAGE_CASES] + [("zip", *c) for c in PACKED_CASES],
)
def test_bad_images_refused_and_nothing_written(
    tmp_path: Path, studio_home: Path, packing: str, case: str, message: str
) -> None:
    root = bad_folder(tmp_path / "src", case)
    source = zip_folder(root, tmp_path / "pets.zip") if packing == "zip" else root
    before_home, before_tmp = snapshot(studio_home), snapshot(tmp_path)
    with pytest.raises(DataError, match=message):
        register_upload("images", source)
    assert snapshot(studio_home) == before_home
    assert snapshot(tmp_path) == before_tmp
    assert not get_settings().uploads_dir.exists()


def test_bad_image_options(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets", {"cat": 3, "dog": 3})
    with pytest.raises(DataError, match=r"images option size=2 is out of range; use 4..512"):
        load_dataset(f"images:{root}?size=2")
    with pytest.raises(DataError, match=r"images option channels='2' must be one of auto, 1, 3"):
        load_dataset(f"images:{root}?channels=2")
    text_file = tmp_path / "a.txt"
    text_file.write_text("x")
    with pytest.raises(DataError, match=r"a.txt is neither a folder nor a .zip archive"):
        load_dataset(f"images:{text_file}")


def test_a_link_in_a_hidden_folder_is_refused_and_nothing_copied(
    tmp_path: Path, studio_home: Path
) -> None:
    root = write_image_folder(tmp_path / "pets", {"cat": 2, "dog": 2})
    (root / ".cache").mkdir()
    (root / ".cache" / "root").symlink_to("/")
    (root / ".cache" / "shadow").symlink_to("/etc/shadow")
    with pytest.raises(DataError, match=r"pets: '\.cache/(root|shadow)' is a symbolic link"):
        register_upload("images", root)
    assert not get_settings().uploads_dir.exists()


def test_a_huge_member_is_refused_from_its_header_with_a_readable_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_MAX_IMAGE_MEGAPIXELS", "1")  # a 16 MB file limit
    root = write_image_folder(tmp_path / "pets", {"cat": 2, "dog": 2})
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(root.rglob("*.png")):
            bundle.write(path, path.relative_to(root).as_posix())
        with bundle.open("cat/zeros.png", "w", force_zip64=True) as member:
            for _ in range(40):
                member.write(bytes(2**20))  # 40 MiB of zeros, about 40 KB compressed
    with pytest.raises(DataError) as refused:
        register_upload("images", archive)
    message = str(refused.value)
    assert "'cat/zeros.png' is 40.0 MB, over the limit of 16 MB for one image file" in message
    assert "STUDIO_MAX_IMAGE_MEGAPIXELS" in message


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_MAX_IMAGE_MEGAPIXELS", "0.01")  # 10,000 pixels
    root = write_image_folder(tmp_path / "pets", {"cat": 2, "dog": 2})
    Image.new("RGB", (200, 100), (1, 2, 3)).save(root / "cat" / "wide.png")
    decoded = []
    original_load = ImageFile.ImageFile.load
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or original_load(self)
    )
    with pytest.raises(
        DataError,
        match=r"'cat/wide.png' is 200x100 pixels .* over the limit of 0\.01 megapixels per image \(STUDIO_MAX_IMAGE_MEGAPIXELS\)",
    ):
        load_dataset(f"images:{root}")
    assert (200, 100) not in decoded


def test_a_file_that_is_not_an_image_is_named_without_python_internals(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "pets", {"cat": 2, "dog": 2})
    (root / "dog" / "fake.png").write_bytes(b"\0" * 64)
    with pytest.raises(DataError) as refused:
        load_dataset(f"images:{root}")
    assert "'dog/fake.png' could not be read as an image" in str(refused.value)
    assert "BytesIO" not in str(refused.value) and " at 0x" not in str(refused.value)
