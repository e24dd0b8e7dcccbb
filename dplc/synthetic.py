"""Synthetic colour images laid out exactly as the CelebA and LSUN sources expect.

The 64×64 colour setting of Tschannen et al. (2018, Sec. 5) needs CelebA or LSUN bedrooms,
which no test can download. These images stand in for them: each has structure a generator
must learn (a smooth two-colour gradient background, a centred ellipse like an aligned face,
a few rectangles and discs, and an oriented stripe texture), drawn from a seeded generator so
the same seed writes the same files.

- :func:`write_celeba_like`: aligned-CelebA layout, a folder of 178×218 JPEGs named
  ``000001.jpg``, … (:func:`dplc.sources.load_celeba` centre-crops 140×140 and resizes to 64).
- :func:`write_lsun_like`: LSUN's layout, an LMDB whose values are encoded images of varied
  sizes (``data.mdb`` inside; needs the ``lmdb`` package), read by :func:`dplc.sources.load_lsun`.

Command line::

    python -m dplc.synthetic celeba data/raw/rgb64-smoke --count 320

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     files = write_celeba_like(d, 3, seed=1)
...     [f.name for f in files], image(178, 218, np.random.default_rng(0)).shape
(['000001.jpg', '000002.jpg', '000003.jpg'], (218, 178, 3))
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

CELEBA_SIZE = (178, 218)
"""Width × height of an aligned CelebA image."""

MAX_COUNT = 1_000_000


def _gradient(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A linear blend between two random colours along a random direction (float, H×W×3)."""
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height + 1) / 2
    t = (t - t.min()) / max(t.max() - t.min(), 1e-9)
    return a * (1 - t[..., None]) + b * t[..., None]


def _stripes(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """An oriented sinusoidal texture of random period and amplitude (float, H×W×1)."""
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(6, 24)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    phase = (np.cos(angle) * xx + np.sin(angle) * yy) * 2 * np.pi / period
    return rng.uniform(10, 40) * np.sin(phase)[..., None]


def image(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """One structured colour image, uint8 H×W×3."""
    from PIL import Image, ImageDraw

    base = np.clip(_gradient(width, height, rng) + _stripes(width, height, rng), 0, 255)
    im = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(1, 4))):  # rectangles and discs anywhere
        x0, y0 = rng.uniform(0, width * 0.8), rng.uniform(0, height * 0.8)
        w, h = rng.uniform(width * 0.1, width * 0.4), rng.uniform(height * 0.1, height * 0.4)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        shape = draw.rectangle if rng.random() < 0.5 else draw.ellipse
        shape((x0, y0, x0 + w, y0 + h), fill=colour)
    cx, cy = width / 2 + rng.normal(0, width * 0.03), height * 0.55 + rng.normal(0, height * 0.03)
    rx, ry = width * rng.uniform(0.18, 0.28), height * rng.uniform(0.2, 0.3)  # the "face"
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=tuple(int(c) for c in rng.integers(60, 256, 3)))
    for side in (-1, 1):  # two "eyes"
        ex, ey = cx + side * rx * 0.4, cy - ry * 0.25
        draw.ellipse((ex - rx * 0.12, ey - ry * 0.08, ex + rx * 0.12, ey + ry * 0.08), fill=(20, 20, 20))
    return np.asarray(im, dtype=np.uint8)


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be in [1, {MAX_COUNT}], got {count}")


def write_celeba_like(folder: str | Path, count: int, seed: int = 0, quality: int = 95) -> list[Path]:
    """Write ``count`` aligned-CelebA-style JPEGs (178×218, ``000001.jpg`` …) into ``folder``."""
    from PIL import Image

    _check_count(count)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    files = []
    for i in range(1, count + 1):
        path = out / f"{i:06d}.jpg"
        Image.fromarray(image(*CELEBA_SIZE, rng)).save(path, quality=quality)
        files.append(path)
    return files


def write_lsun_like(folder: str | Path, count: int, seed: int = 0) -> Path:
    """Write ``count`` images of varied sizes (shorter side 64–96 px) as an LSUN-style LMDB:
    keys are hex ids, values JPEG bytes, as LSUN's ``bedroom_train_lmdb``."""
    import lmdb  # type: ignore[import-not-found]
    from PIL import Image

    _check_count(count)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    env = lmdb.open(str(out), map_size=max(1 << 24, count * (1 << 16)))
    with env.begin(write=True) as txn:
        for i in range(count):
            short = int(rng.integers(64, 97))
            size = (int(short * rng.uniform(1.0, 1.5)), short)
            buf = io.BytesIO()
            Image.fromarray(image(*size, rng)).save(buf, format="JPEG", quality=90)
            txn.put(f"{i:040x}".encode(), buf.getvalue())
    env.close()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Write synthetic colour images in a dataset's layout.")
    ap.add_argument("layout", choices=("celeba", "lsun"))
    ap.add_argument("folder", type=Path)
    ap.add_argument("--count", type=int, default=320)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.layout == "celeba":
        write_celeba_like(args.folder, args.count, args.seed)
    else:
        write_lsun_like(args.folder, args.count, args.seed)
    print(f"wrote {args.count} {args.layout}-layout images to {args.folder}")


if __name__ == "__main__":
    main()
