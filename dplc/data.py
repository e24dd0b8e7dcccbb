"""Data: the Parquet shard schema (writer and reader) and images as torch tensors for training.

Schema (one schema for every source, version 1). Each shard ``{split}-{k:05d}.parquet`` holds

=========  =================================  ==============================================
column     Arrow type                         meaning
=========  =================================  ==============================================
image      fixed_size_binary(H·W·C)           uint8 pixels, row-major H, W, C
label      int16                              class label, -1 when the source has none
split      string                             "train" or "test"
=========  =================================  ==============================================

and its schema metadata key ``dplc`` carries JSON ``{"height", "width", "channels", "source",
"schema_version"}``. ``manifest.json`` beside the shards lists every shard with its row count
and SHA-256, so readers can verify what they load.

The sources the shards are made from are in :mod:`dplc.sources`.

>>> import numpy as np, tempfile
>>> imgs = np.arange(2 * 28 * 28, dtype=np.uint8).reshape(2, 28, 28, 1) % 251
>>> d = tempfile.mkdtemp()
>>> _ = write_shards(d, {"train": ImageArray(imgs, np.array([3, 4]))}, source="doc")
>>> back = read_split(d, "train")
>>> bool((back.images == imgs).all()), back.labels.tolist()
(True, [3, 4])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor

from dplc.digest import file_sha256

SCHEMA_VERSION = 1
SPLITS = ("train", "test")


class DataNotFoundError(FileNotFoundError):
    """The requested data is not on this machine; the message says how to get it."""


class DataFormatError(ValueError):
    """A data file is corrupt or does not follow the expected format."""


@dataclass
class ImageArray:
    """uint8 images (N, H, W, C) and int labels (N,) of one split."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise DataFormatError(
                f"images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (self.images.shape[0],):
            raise DataFormatError("labels must have one entry per image")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, n: int | None) -> ImageArray:
        """The first ``n`` images (all when ``n`` is None or larger)."""
        return self if n is None or n >= len(self) else ImageArray(self.images[:n], self.labels[:n])


# ------------------------------------------------------------------------ Parquet schema


def write_shards(
    out_dir: str | Path, splits: dict[str, ImageArray], source: str, shard_size: int = 20_000
) -> dict:
    """Write each split as Parquet shards plus ``manifest.json``; return the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.parquet"):
        old.unlink()
    shapes = {a.images.shape[1:] for a in splits.values()}
    if len(shapes) != 1:
        raise DataFormatError(f"all splits must share one image shape, got {shapes}")
    h, w, c = shapes.pop()
    meta = {
        "height": h,
        "width": w,
        "channels": c,
        "source": source,
        "schema_version": SCHEMA_VERSION,
    }
    schema = pa.schema(
        [("image", pa.binary(h * w * c)), ("label", pa.int16()), ("split", pa.string())],
        metadata={"dplc": json.dumps(meta)},
    )
    files = []
    for split, arr in splits.items():
        if split not in SPLITS:
            raise DataFormatError(f"unknown split {split!r}")
        for k, start in enumerate(range(0, max(len(arr), 1), shard_size)):
            imgs = arr.images[start : start + shard_size]
            n = imgs.shape[0]
            flat = np.ascontiguousarray(imgs).reshape(-1)
            col = pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(h * w * c), n, [None, pa.py_buffer(flat)]
            )
            table = pa.table(
                {
                    "image": col,
                    "label": pa.array(arr.labels[start : start + shard_size].astype(np.int16)),
                    "split": pa.array([split] * n, pa.string()),
                },
                schema=schema,
            )
            path = out / f"{split}-{k:05d}.parquet"
            pq.write_table(table, path, compression="zstd")
            files.append({"file": path.name, "split": split, "rows": n, "sha256": file_sha256(path)})
    manifest = meta | {"files": files, "counts": {s: len(a) for s, a in splits.items()}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def read_manifest(root: str | Path) -> dict:
    """The manifest of a prepared dataset; a clear error when it is missing."""
    path = Path(root) / "manifest.json"
    if not path.is_file():
        raise DataNotFoundError(
            f"no prepared dataset at {root} (manifest.json missing): run the `prepare` stage "
            "(`dvc repro prepare`) or `python -m pipelines.prepare`"
        )
    return json.loads(path.read_text())


def read_split(
    root: str | Path, split: str, verify: bool = False, limit: int | None = None
) -> ImageArray:
    """Read one split of a prepared dataset into memory (optionally checking SHA-256 sums)."""
    root = Path(root)
    manifest = read_manifest(root)
    h, w, c = manifest["height"], manifest["width"], manifest["channels"]
    images, labels = [], []
    count = 0
    for entry in manifest["files"]:
        if entry["split"] != split:
            continue
        path = root / entry["file"]
        if not path.is_file():
            raise DataNotFoundError(
                f"shard {path} listed in the manifest is missing; rerun `prepare`"
            )
        if verify and file_sha256(path) != entry["sha256"]:
            raise DataFormatError(f"shard {path} does not match its checksum; rerun `prepare`")
        table = pq.read_table(path, columns=["image", "label"])
        col = table.column("image").combine_chunks()
        n = len(col)
        buf = col.buffers()[1]
        arr = np.frombuffer(buf, dtype=np.uint8, count=n * h * w * c, offset=col.offset * h * w * c)
        images.append(arr.reshape(n, h, w, c))
        labels.append(table.column("label").to_numpy().astype(np.int64))
        count += n
        if limit is not None and count >= limit:
            break
    if not images:
        raise DataNotFoundError(f"split {split!r} has no shards in {root}")
    return ImageArray(np.concatenate(images), np.concatenate(labels)).subset(limit)


# ----------------------------------------------------------------------------- tensors


def to_tensor(images: np.ndarray, image_size: int) -> Tensor:
    """uint8 (N, H, W, C) -> uint8 tensor (N, C, S, S), zero-padded symmetrically to S (28 -> 32)."""
    n, h, w, c = images.shape
    if h > image_size or w > image_size:
        raise DataFormatError(
            f"images are {h}x{w}, larger than the network's {image_size}x{image_size}"
        )
    t = torch.from_numpy(np.require(images, requirements=['C', 'W'])).permute(0, 3, 1, 2)
    top, left = (image_size - h) // 2, (image_size - w) // 2
    out = torch.zeros(n, c, image_size, image_size, dtype=torch.uint8)
    out[:, :, top : top + h, left : left + w] = t
    return out


def to_float(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float [-1, 1] -> uint8 [0, 255], rounded and clamped."""
    return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)


def crop_to(images: Tensor, height: int, width: int) -> Tensor:
    """Undo :func:`to_tensor`'s padding: the central ``height`` x ``width`` window."""
    s = images.shape[-1]
    top, left = (s - height) // 2, (s - width) // 2
    return images[..., top : top + height, left : left + width]


class BatchSampler:
    """Random batches (with replacement) from an in-memory uint8 tensor, reproducible and resumable.

    The state is one ``torch.Generator``; :meth:`state` / :meth:`set_state` let the training loop
    checkpoint it so a resumed run draws exactly the batches the uninterrupted run would have.
    """

    def __init__(self, images: Tensor, seed: int) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise DataFormatError("BatchSampler wants uint8 images (N, C, H, W)")
        if images.shape[0] == 0:
            raise DataFormatError("BatchSampler got an empty dataset")
        self.images = images
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, n: int) -> Tensor:
        idx = torch.randint(0, self.images.shape[0], (n,), generator=self.gen)
        return to_float(self.images[idx])

    def state(self) -> Tensor:
        return self.gen.get_state()

    def set_state(self, state: Tensor) -> None:
        self.gen.set_state(state)
