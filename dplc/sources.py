"""The data sources the Parquet shards (:mod:`dplc.data`) are made from.

``fashion_mnist`` (Debian's ``dataset-fashion-mnist`` package, else a download with
checksums), ``mnist`` (download), ``celeba`` (a folder of aligned JPEGs, centre-cropped to
64x64), ``lsun`` (an LMDB or an exported folder, 64x64) and ``folder`` (any images). Every
reader bounds what it reads (IDX headers, item counts) and verifies checksums where the source
publishes them.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import struct
import urllib.request
from pathlib import Path

import numpy as np

from dplc.data import DataFormatError, DataNotFoundError, ImageArray
from dplc.pixels import IMAGE_SUFFIXES

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
MAX_IDX_ITEMS = 10_000_000

_FASHION = {  # sha256 of the *decompressed* IDX files, so the Debian and upstream gz both verify
    "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_MNIST = {  # md5 of the gz files as published (torchvision's table)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format) of unsigned bytes, bounding every length."""
    if len(raw) < 4:
        raise DataFormatError("IDX file shorter than its header")
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08 or not 1 <= ndim <= 4:
        raise DataFormatError("not an IDX file of unsigned bytes")
    if len(raw) < 4 + 4 * ndim:
        raise DataFormatError("IDX header truncated")
    dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
    if dims[0] > MAX_IDX_ITEMS or any(d > 4096 for d in dims[1:]):
        raise DataFormatError(f"IDX dimensions {dims} are implausible")
    size = int(np.prod(dims))
    if len(raw) != 4 + 4 * ndim + size:
        raise DataFormatError(f"IDX body has {len(raw) - 4 - 4 * ndim} bytes, header says {size}")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def cache_dir() -> Path:
    """Where downloads go: ``$DPLC_CACHE`` or ``~/.cache/dplc``."""
    return Path(os.environ.get("DPLC_CACHE", Path.home() / ".cache" / "dplc"))


def _download(url: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            f.write(r.read())
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DataNotFoundError(f"could not download {url}: {e}") from e
    tmp.replace(dest)


def _mnist_like(
    name: str, table: dict[str, str], url: str, local: Path | None, check: str, download: bool
) -> dict[str, ImageArray]:
    """Load an MNIST-format dataset from ``local`` or the cache, downloading when allowed."""
    where = (
        local
        if local is not None and all((local / f).is_file() for f in table)
        else cache_dir() / name
    )
    raw: dict[str, np.ndarray] = {}
    for fname, digest in table.items():
        path = where / fname
        if not path.is_file():
            if not download:
                raise DataNotFoundError(_how_to_get(name))
            _download(url + fname, path)
        gz = path.read_bytes()
        try:
            body = gzip.decompress(gz)
        except (OSError, EOFError) as e:
            raise DataFormatError(f"{path} is not a valid gzip file: {e}") from e
        got = (
            hashlib.sha256(body).hexdigest()
            if check == "sha256-raw"
            else hashlib.md5(gz).hexdigest()
        )
        if got != digest:
            raise DataFormatError(
                f"{path} does not match its published checksum ({got} != {digest})"
            )
        raw[fname] = parse_idx(body)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        imgs = raw[f"{prefix}-images-idx3-ubyte.gz"][..., None]
        labels = raw[f"{prefix}-labels-idx1-ubyte.gz"].astype(np.int64)
        out[split] = ImageArray(np.ascontiguousarray(imgs), labels)
    return out


def _how_to_get(name: str) -> str:
    hints = {
        "fashion_mnist": "Fashion-MNIST not found: `sudo apt-get install dataset-fashion-mnist` "
        f"(files in {DEBIAN_FASHION_MNIST}) or allow the download (data.download: true)",
        "mnist": f"MNIST not found in {cache_dir() / 'mnist'}: allow the download (data.download: true) "
        "or place the four *-ubyte.gz files there",
    }
    return hints.get(name, f"{name} not found")


def load_fashion_mnist(
    path: str | Path | None = None, download: bool = True
) -> dict[str, ImageArray]:
    """Fashion-MNIST 28x28: Debian's package (or ``path``), else the upstream download."""
    local = Path(path) if path else DEBIAN_FASHION_MNIST
    return _mnist_like("fashion_mnist", _FASHION, _FASHION_URL, local, "sha256-raw", download)


def load_mnist(path: str | Path | None = None, download: bool = True) -> dict[str, ImageArray]:
    """MNIST 28x28 from ``path`` or the cache, else the download (md5 of the published gz)."""
    local = Path(path) if path else None
    return _mnist_like("mnist", _MNIST, _MNIST_URL, local, "md5-gz", download)


def _load_image(path: Path, size: int, channels: int, crop: int | None) -> np.ndarray:
    from PIL import Image  # local import: only the folder sources need PIL

    with Image.open(path) as im:
        im = im.convert("L" if channels == 1 else "RGB")
        w, h = im.size
        side = crop if crop is not None else min(w, h)
        side = min(side, w, h)
        left, top = (w - side) // 2, (h - side) // 2
        im = im.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
        arr = np.asarray(im, dtype=np.uint8)
    return arr.reshape(size, size, channels)


def _split_list(items: list, test_fraction: float) -> dict[str, list]:
    n_test = max(1, int(round(len(items) * test_fraction))) if len(items) > 1 else 0
    return {"train": items[: len(items) - n_test], "test": items[len(items) - n_test :]}


def load_folder(
    path: str | Path,
    size: int = 64,
    channels: int = 3,
    crop: int | None = None,
    test_fraction: float = 0.1,
    limit: int | None = None,
    name: str = "folder",
) -> dict[str, ImageArray]:
    """Any folder of images (recursively, sorted), centre-cropped and resized to ``size``."""
    root = Path(path)
    if not root.is_dir():
        raise DataNotFoundError(f"{name}: image folder {root} does not exist")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise DataNotFoundError(f"{name}: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    out = {}
    for split, items in _split_list(files, test_fraction).items():
        imgs = (
            np.stack([_load_image(p, size, channels, crop) for p in items])
            if items
            else np.zeros((0, size, size, channels), np.uint8)
        )
        out[split] = ImageArray(imgs, np.full(len(items), -1, np.int64))
    return out


def load_celeba(path: str | Path, limit: int | None = None) -> dict[str, ImageArray]:
    """CelebA aligned JPEGs (178x218): centre crop 140x140, resize to 64x64 (WAE's protocol)."""
    if not Path(path).is_dir():
        raise DataNotFoundError(
            f"CelebA not found at {path}: download img_align_celeba.zip from the CelebA site, "
            "unzip it and set data.path to the img_align_celeba folder"
        )
    return load_folder(path, size=64, channels=3, crop=140, limit=limit, name="celeba")


def load_lsun(path: str | Path, limit: int | None = None) -> dict[str, ImageArray]:
    """LSUN bedrooms: an LMDB (``data.mdb`` inside, needs the ``lmdb`` package) or a folder export."""
    root = Path(path)
    if (root / "data.mdb").is_file():
        try:
            import lmdb  # type: ignore[import-not-found]
        except ImportError as e:
            raise DataNotFoundError(
                "reading LSUN's LMDB needs `pip install lmdb`, or export it to a folder"
            ) from e
        from PIL import Image

        imgs = []
        env = lmdb.open(str(root), readonly=True, lock=False)
        with env.begin() as txn:
            for i, (_, value) in enumerate(txn.cursor()):
                if limit is not None and i >= limit:
                    break
                with Image.open(io.BytesIO(value)) as im:
                    tmp = im.convert("RGB")
                    w, h = tmp.size
                    s = min(w, h)
                    tmp = tmp.crop(((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)).resize(
                        (64, 64), Image.BICUBIC
                    )
                    imgs.append(np.asarray(tmp, np.uint8))
        parts = _split_list(imgs, 0.1)
        return {k: ImageArray(np.stack(v), np.full(len(v), -1, np.int64)) for k, v in parts.items()}
    if not root.is_dir():
        raise DataNotFoundError(
            f"LSUN bedrooms not found at {path}: get bedroom_train_lmdb with the LSUN tools and set "
            "data.path to the LMDB folder (or to a folder of exported images)"
        )
    return load_folder(root, size=64, channels=3, limit=limit, name="lsun")


def load_source(
    source: str, path: str | None = None, download: bool = True, limit: int | None = None
) -> dict[str, ImageArray]:
    """Dispatch on the source name (the ``data.source`` param)."""
    if source == "fashion_mnist":
        return load_fashion_mnist(path, download)
    if source == "mnist":
        return load_mnist(path, download)
    if path is None:
        raise DataNotFoundError(f"source {source!r} needs data.path")
    if source == "celeba":
        return load_celeba(path, limit)
    if source == "lsun":
        return load_lsun(path, limit)
    if source == "folder":
        return load_folder(path, limit=limit)
    raise DataNotFoundError(
        f"unknown data source {source!r}; choose fashion_mnist, mnist, celeba, lsun or folder"
    )
