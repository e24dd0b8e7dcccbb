"""Image files in and out of the command line: pictures and ``.npy`` batches to one uint8 batch,
PNGs and files written atomically.

Every defect of the user's input raises :class:`ImageFileError` with a message naming the file
and, where one exists, the flag that would convert it (``--resize``, ``--grayscale``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dplc.pixels import IMAGE_SUFFIXES


class ImageFileError(ValueError):
    """An input file or folder that cannot be read as the model's images (exit status 2)."""


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, PIL's convert("L") formula, for uint8 (..., 3) arrays."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 299 + g * 587 + b * 114 + 500) // 1000).astype(np.uint8)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    mode = "L" if image.shape[-1] == 1 else "RGB"
    im = Image.fromarray(image[..., 0] if mode == "L" else image, mode)
    out = np.asarray(im.resize((size, size), Image.BICUBIC), dtype=np.uint8)
    return out.reshape(size, size, image.shape[-1])


def _read_picture(path: Path, channels: int, grayscale: bool) -> np.ndarray:
    """One image file -> uint8 (H, W, channels), refusing a wrong mode unless told to convert."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            want = "L" if channels == 1 else "RGB"
            if im.mode != want:
                if channels == 1 and grayscale:
                    im = im.convert("L")
                else:
                    hint = "; pass --grayscale to convert it" if channels == 1 else ""
                    raise ImageFileError(
                        f"{path}: image mode {im.mode}, the model takes {want} "
                        f"({channels}-channel) images{hint}"
                    )
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageFileError(f"{path}: not an image ({type(e).__name__}: {e})") from e
    return arr.reshape(arr.shape[0], arr.shape[1], channels)


def _read_npy(path: Path, channels: int, grayscale: bool) -> list[np.ndarray]:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ImageFileError(f"{path}: not a readable .npy file ({e})") from e
    if arr.dtype != np.uint8:
        raise ImageFileError(f"{path}: .npy images must be uint8, got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise ImageFileError(f"{path}: .npy images must be (N, H, W) or (N, H, W, C), got {arr.shape}")
    if arr.shape[-1] != channels:
        if channels == 1 and arr.shape[-1] == 3 and grayscale:
            arr = _luminance(arr)[..., None]
        else:
            hint = (
                "; pass --grayscale to convert it" if channels == 1 and arr.shape[-1] == 3 else ""
            )
            raise ImageFileError(
                f"{path}: images have {arr.shape[-1]} channels, the model takes {channels}{hint}"
            )
    return list(arr)


def _expand(inputs: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for name in inputs:
        p = Path(name)
        if p.is_dir():
            found = sorted(
                q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise ImageFileError(f"{p}: directory holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif not p.exists():
            raise ImageFileError(f"{p}: no such file or directory")
        elif not p.is_file():
            raise ImageFileError(f"{p}: not a regular file")
        elif p.stat().st_size == 0:
            raise ImageFileError(f"{p}: empty file")
        else:
            files.append(p)
    return files


def load_images(
    inputs: Sequence[str], channels: int, size: int, resize: bool, grayscale: bool
) -> np.ndarray:
    """Read every input into one uint8 batch (N, H, W, channels) of one size ≤ ``size``."""
    images: list[np.ndarray] = []
    origins: list[Path] = []
    for path in _expand(inputs):
        if path.suffix.lower() == ".npy":
            batch = _read_npy(path, channels, grayscale)
        else:
            batch = [_read_picture(path, channels, grayscale)]
        images += batch
        origins += [path] * len(batch)
    if resize:
        images = [im if im.shape[:2] == (size, size) else _resize(im, size) for im in images]
    first = images[0].shape[:2]
    for im, path in zip(images, origins, strict=True):
        h, w = im.shape[:2]
        if h > size or w > size:
            raise ImageFileError(
                f"{path}: image is {h}x{w}, the model takes at most {size}x{size}; "
                "pass --resize to resize it"
            )
        if (h, w) != first:
            raise ImageFileError(
                f"{path}: image is {h}x{w} but {origins[0]} is {first[0]}x{first[1]}; "
                "one file holds images of one size (pass --resize)"
            )
    return np.stack(images)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _picture(image: np.ndarray):  # a PIL image (PIL is imported lazily)
    """A uint8 (H, W, C) array as a PIL image: grey for one channel, else RGB."""
    from PIL import Image

    return Image.fromarray(image[..., 0], "L") if image.shape[-1] == 1 else Image.fromarray(image, "RGB")


def write_pngs(out: Path, named: list[tuple[str, np.ndarray]]) -> None:
    """Write PNGs into a temporary folder beside ``out``, then move them into ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name, image in named:
            _picture(image).save(tmp / name, format="PNG")
        if not out.exists():
            os.rename(tmp, out)
            return
        for name, _ in named:
            os.replace(tmp / name, out / name)
        tmp.rmdir()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def tile(images: np.ndarray, nrow: int = 8, padding: int = 1) -> np.ndarray:
    """uint8 images (N, H, W, C) tiled row by row, ``nrow`` to a row, ``padding`` black pixels
    between and around them: the layout of ``torchvision.utils.make_grid`` (without importing
    torchvision, whose import costs a training stage seconds).

    >>> tile(np.full((3, 2, 2, 1), 255, np.uint8), nrow=2).shape
    (7, 7, 1)
    """
    if images.ndim != 4 or images.dtype != np.uint8 or images.shape[0] == 0 or nrow < 1:
        raise ValueError(f"expected a non-empty uint8 batch (N, H, W, C) and nrow >= 1, got "
                         f"{images.dtype} {images.shape}, nrow={nrow}")  # fmt: skip
    n, h, w, c = images.shape
    cols = min(nrow, n)
    rows = -(-n // cols)
    out = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, c), np.uint8)
    for i, image in enumerate(images):
        y, x = padding + (i // cols) * (h + padding), padding + (i % cols) * (w + padding)
        out[y : y + h, x : x + w] = image
    return out


def save_tile(images: np.ndarray, path: Path, nrow: int = 8, padding: int = 1) -> Path:
    """:func:`tile` saved as a PNG at ``path`` (grey for one channel, else RGB)."""
    grid = tile(images, nrow, padding)
    path.parent.mkdir(parents=True, exist_ok=True)
    _picture(grid).save(path)
    return path


def read_file(path: Path) -> bytes:
    if not path.exists():
        raise ImageFileError(f"{path}: no such file or directory")
    if path.is_dir():
        raise ImageFileError(f"{path}: is a directory, expected a .dplc file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImageFileError(f"{path}: cannot read ({e.strerror})") from e
