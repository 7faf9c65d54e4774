"""`images:PATH` uploads: a folder or a zip with one sub-folder per class.

Every image is decoded with Pillow, converted to grayscale or RGB and resized to size x size.
A file that is not an image, a corrupt image, a class folder without images, fewer than two
classes, symlinks and hostile archives are refused with the file named.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.config import get_settings
from core.data.archive import ArchiveLimits, ByteBudget, open_zip, read_member
from core.data.assemble import build_upload_dataset
from core.data.dataset import Dataset
from core.errors import DataError
from core.progress import ProgressBar

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F", "P;L"}
PROGRESS_AFTER = 500  # show a progress bar for folders with more images than this


@dataclass(frozen=True)
class ImageFile:
    class_name: str
    name: str  # path shown in messages, relative to the upload
    read: Callable[[], bytes]


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _group(
    source: str,
    files: list[tuple[tuple[str, ...], Callable[[], bytes]]],
    folders: set[tuple[str, ...]],
) -> tuple[list[str], list[ImageFile]]:
    """Class folders -> (class names, image files), refusing anything not shaped like one."""
    files = [(parts, read) for parts, read in files if not _hidden(parts)]
    folders = {parts for parts in folders if not _hidden(parts)}
    # a single wrapper folder (zip of "animals/" holding "cat/", "dog/") is looked through
    while files and all(len(p) >= 3 for p, _ in files) and len({p[0] for p, _ in files}) == 1:
        top = files[0][0][0]
        files = [(p[1:], read) for p, read in files]
        folders = {f[1:] for f in folders if len(f) > 1 and f[0] == top}
    loose = [p for p, _ in files if len(p) == 1]
    if loose:
        raise DataError(
            f"{source}: {loose[0][0]!r} is not inside a class folder; put every image in a "
            "sub-folder named after its class (e.g. cat/1.png, dog/2.png)"
        )
    classes = sorted({p[0] for p, _ in files} | {f[0] for f in folders if f})
    images: list[ImageFile] = []
    for parts, read in sorted(files, key=lambda item: item[0]):
        name = "/".join(parts)
        if not name.lower().endswith(IMAGE_SUFFIXES):
            raise DataError(
                f"{source}: {name!r} is not an image; class folders may only hold "
                f"{', '.join(IMAGE_SUFFIXES)} files"
            )
        images.append(ImageFile(parts[0], name, read))
    for class_name in classes:
        if not any(image.class_name == class_name for image in images):
            raise DataError(
                f"{source}: class folder {class_name!r} has no images; add some or remove it"
            )
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise DataError(
            f"{source} needs at least two class folders (one sub-folder per class); found {found}"
        )
    return classes, images


def _folder_files(root: Path) -> tuple[list[ImageFile], list[str]]:
    files: list[tuple[tuple[str, ...], Callable[[], bytes]]] = []
    folders: set[tuple[str, ...]] = set()
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if _hidden(parts):
            continue
        if path.is_symlink():
            raise DataError(
                f"{root.name}: {'/'.join(parts)!r} is a symbolic link; links are not accepted"
            )
        if path.is_dir():
            folders.add(parts)
        elif path.is_file():
            if path.name.lower().endswith(IMAGE_SUFFIXES):
                _check_file_size(root.name, "/".join(parts), path.stat().st_size)
            files.append((parts, path.read_bytes))
    classes, images = _group(root.name, files, folders)
    return images, classes


def max_image_file_bytes() -> int:
    """The largest image file accepted: 4 bytes per allowed pixel (an uncompressed RGBA image),
    so a 1000 MB 'image' is refused from its size, before a byte of it is read."""
    return max(16 * 2**20, 4 * get_settings().max_image_pixels)


def _check_file_size(source: str, name: str, size: int) -> None:
    limit = max_image_file_bytes()
    if size > limit:
        raise DataError(
            f"{source}: {name!r} is {size / 2**20:.1f} MB, over the limit of {limit / 2**20:.0f} "
            "MB for one image file (4 bytes per pixel of STUDIO_MAX_IMAGE_MEGAPIXELS)"
        )


def _decode(image: ImageFile, *, size: int) -> tuple[np.ndarray, bool]:
    """(size, size, 3) uint8 RGB pixels and whether the source was grayscale.

    The header is read first: JPEGs decode at a reduced scale (Pillow's draft), and an image
    with more pixels than STUDIO_MAX_IMAGE_MEGAPIXELS is refused before it is decoded."""
    limit = get_settings().max_image_pixels
    try:
        with Image.open(io.BytesIO(image.read())) as picture:
            picture.draft("RGB", (size, size))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
            width, height = picture.size
            if width * height > limit:
                raise DataError(
                    f"{image.name!r} is {width}x{height} pixels ({width * height / 1e6:.0f} "
                    f"megapixels), over the limit of {limit / 1e6:g} megapixels per image "
                    "(STUDIO_MAX_IMAGE_MEGAPIXELS); shrink it or raise the limit"
                )
            picture.load()
            gray = picture.mode in GRAY_MODES
            rgb = picture.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
    except DataError:
        raise
    except UnidentifiedImageError:
        raise DataError(
            f"{image.name!r} could not be read as an image: its content is not PNG, JPEG, GIF, "
            "BMP, WebP or TIFF; fix or remove it"
        ) from None
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise DataError(
            f"{image.name!r} could not be read as an image ({error}); fix or remove it"
        ) from None
    return np.asarray(rgb, dtype=np.uint8), gray


def _decode_all(images: list[ImageFile], *, size: int, channels: int | str) -> np.ndarray:
    """(n, C, size, size) float32 in [0, 1]; channels 'auto' is 1 when every image is gray."""
    progress = ProgressBar(len(images), label="images") if len(images) > PROGRESS_AFTER else None
    pixels = np.empty((len(images), size, size, 3), dtype=np.uint8)
    all_gray = True
    for position, image in enumerate(images):
        pixels[position], gray = _decode(image, size=size)
        all_gray &= gray
        if progress:
            progress.update(position + 1, image.name)
    if progress:
        progress.close()
    if channels == "auto":
        channels = 1 if all_gray else 3
    if channels == 1:  # ITU-R 601-2 luma, as Pillow's convert("L")
        gray_pixels = pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        chw = gray_pixels[:, None, :, :]
    else:
        chw = pixels.transpose(0, 3, 1, 2).astype(np.float32)
    return np.ascontiguousarray(chw / 255.0, dtype=np.float32)


class _ZipReader:
    """Reads the (already checked) members of one archive one at a time, as they are decoded,
    against one byte budget for the whole archive; the zip is opened on the first read."""

    def __init__(self, archive: Path, limits: ArchiveLimits) -> None:
        self.archive, self.budget = archive, ByteBudget(archive, limits)
        self.bundle: zipfile.ZipFile | None = None

    def read(self, info: zipfile.ZipInfo) -> bytes:
        if self.bundle is None:
            self.bundle = zipfile.ZipFile(self.archive)
        return b"".join(read_member(self.bundle, info, self.budget))


def list_images(path: Path, limits: ArchiveLimits) -> tuple[list[ImageFile], list[str]]:
    """The image files of a folder or zip and the class names, all checks done, none decoded."""
    if path.is_dir():
        return _folder_files(path)
    if path.suffix.lower() != ".zip":
        raise DataError(f"{path.name} is neither a folder nor a .zip archive of class folders")
    reader = _ZipReader(path, limits)
    with open_zip(path, limits) as (_bundle, members):
        files, folders = [], set()
        for member, info in members:
            if info.is_dir():
                folders.add(member.parts)
            elif not _hidden(member.parts):
                _check_file_size(path.name, info.filename, info.file_size)
                # read one member at a time, when it is decoded: never the whole archive at once
                files.append((member.parts, partial(reader.read, info)))
    classes, images = _group(path.name, files, folders)
    return images, classes


def load_images_dataset(
    path: Path,
    *,
    name: str,
    val_fraction: float,
    seed: int,
    limits: ArchiveLimits,
    size: int = 32,
    channels: int | str = "auto",
) -> Dataset:
    """Images resized to (channels, size, size) with one class per sub-folder."""
    images, classes = list_images(path, limits)
    x = _decode_all(images, size=size, channels=channels)
    lookup = {c: i for i, c in enumerate(classes)}
    y = np.asarray([lookup[image.class_name] for image in images], dtype=np.int64)
    return build_upload_dataset(
        x=x,
        y=y,
        task="classification",
        val_fraction=val_fraction,
        seed=seed,
        name=name,
        modality="image",
        class_names=classes,
        description=f"{path.name}: {len(images)} images in {len(classes)} classes, "
        f"{x.shape[1]}x{size}x{size}",
        extras={"files": [image.name for image in images]},
    )
