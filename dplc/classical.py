"""Classical codec baselines (JPEG, WebP, JPEG XL, JPEG 2000, AVIF, HEVC intra), same metrics.

Each codec is swept over its quality setting on the same test images as the learned codecs and
scored with the same :mod:`dplc.metrics` functions. Two sizes are reported per point:

* ``bpp_file``: the real file bytes (what a user stores), and
* ``bpp_payload``: the entropy-coded payload without container and headers, found by parsing
  each format (JPEG: scan data after SOS; JPEG 2000: tile data after SOD; WebP: the VP8 chunk;
  AVIF/HEIF: the ``mdat`` box; JPEG XL: the bare codestream, whose header is a few bytes).

On 28x28 images the headers alone exceed the learned codec's whole budget, which is why both
are given. Grayscale images are replicated to 3 channels for WebP, AVIF and HEIF (their lossy
modes need colour), decoded back and averaged to one channel.
"""

from __future__ import annotations

import io
import shutil
import struct
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from dplc import metrics
from dplc.data import to_float, to_tensor

QUALITIES: dict[str, list[int]] = {
    "jpeg": [5, 10, 20, 40, 70, 90],
    "webp": [0, 5, 20, 40, 70, 90],
    "jpegxl": [10, 30, 50, 70, 85, 95],
    "jpeg2000": [18, 22, 26, 30, 35, 40],  # target PSNR in dB (imagecodecs' level)
    "avif": [5, 20, 40, 60, 80, 95],
    "heif": [5, 20, 40, 60, 80, 95],
}


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def _back(dec: np.ndarray, channels: int) -> np.ndarray:
    if dec.ndim == 2:
        dec = dec[..., None]
    if channels == 1 and dec.shape[2] >= 3:
        dec = np.round(dec[..., :3].astype(np.float64).mean(axis=2, keepdims=True)).astype(np.uint8)
    return dec[..., :channels]


def _jpeg_payload(b: bytes) -> int:
    """Bytes of entropy-coded scan data: after the SOS segment's header, before EOI."""
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            break
        marker, length = b[i + 1], struct.unpack(">H", b[i + 2 : i + 4])[0]
        if marker == 0xDA:
            return max(0, len(b) - (i + 2 + length) - 2)
        i += 2 + length
    return len(b)


def _j2k_payload(b: bytes) -> int:
    """Bytes after the first SOD marker (0xFF93) up to EOC."""
    k = b.find(b"\xff\x93")
    return len(b) - k - 2 - 2 if k >= 0 else len(b)


def _box_payload(b: bytes, box: bytes = b"mdat") -> int:
    """Payload of an ISOBMFF box (AVIF/HEIF ``mdat``), top level."""
    i = 0
    while i + 8 <= len(b):
        size, kind = struct.unpack(">I4s", b[i : i + 8])
        header = 8
        if size == 1 and i + 16 <= len(b):
            size, header = struct.unpack(">Q", b[i + 8 : i + 16])[0], 16
        if kind == box:
            return max(0, (size or len(b) - i) - header)
        if size < 8:
            break
        i += size
    return len(b)


def _webp_payload(b: bytes) -> int:
    """Payload of the VP8 chunk less its 10-byte frame header."""
    i = 12
    while i + 8 <= len(b):
        kind, size = b[i : i + 4], struct.unpack("<I", b[i + 4 : i + 8])[0]
        if kind in (b"VP8 ", b"VP8L"):
            return max(0, size - 10)
        i += 8 + size + (size & 1)
    return len(b)


def _heif_encode(img: np.ndarray, q: int) -> bytes:
    import pillow_heif

    heif = pillow_heif.from_bytes(
        mode="RGB",
        size=(img.shape[1], img.shape[0]),
        data=np.ascontiguousarray(_rgb(img)).tobytes(),
    )
    buf = io.BytesIO()
    heif.save(buf, quality=q)
    return buf.getvalue()


def _heif_decode(b: bytes) -> np.ndarray:
    import pillow_heif

    f = pillow_heif.open_heif(io.BytesIO(b))
    return np.asarray(f)


def _codec_table() -> dict[
    str,
    tuple[
        Callable[[np.ndarray, int], bytes], Callable[[bytes], np.ndarray], Callable[[bytes], int]
    ],
]:
    import imagecodecs as ic

    return {
        "jpeg": (
            lambda a, q: ic.jpeg8_encode(a[..., 0] if a.shape[2] == 1 else a, level=q),
            ic.jpeg8_decode,
            _jpeg_payload,
        ),
        "webp": (
            lambda a, q: ic.webp_encode(_rgb(a), level=q, lossless=False),
            ic.webp_decode,
            _webp_payload,
        ),
        "jpegxl": (
            lambda a, q: ic.jpegxl_encode(a[..., 0] if a.shape[2] == 1 else a, level=q),
            ic.jpegxl_decode,
            len,
        ),
        "jpeg2000": (
            lambda a, q: ic.jpeg2k_encode(a[..., 0] if a.shape[2] == 1 else a, level=q),
            ic.jpeg2k_decode,
            _j2k_payload,
        ),
        "avif": (
            # speed 6 (libavif's usual default), far faster than imagecodecs' default at the
            # same size (reports/design_measurements.md)
            lambda a, q: ic.avif_encode(_rgb(a), level=q, speed=6),
            ic.avif_decode,
            lambda b: _box_payload(b),
        ),
        "heif": (_heif_encode, _heif_decode, lambda b: _box_payload(b)),
    }


def available() -> list[str]:
    """The classical codecs this machine can run (BPG only with ``bpgenc`` on the PATH)."""
    names = []
    table = _codec_table()
    probe = np.full((16, 16, 1), 128, np.uint8)
    for name, (enc, dec, _) in table.items():
        try:
            dec(enc(probe, QUALITIES[name][len(QUALITIES[name]) // 2]))
            names.append(name)
        except Exception:  # noqa: BLE001 - a codec missing from this build is simply absent
            continue
    if shutil.which("bpgenc") and shutil.which("bpgdec"):
        names.append("bpg")
    return names


def code_images(
    name: str, images: np.ndarray, quality: int, pool: Executor | None = None
) -> tuple[np.ndarray, int, int]:
    """Encode and decode every image; returns (decodes, total file bytes, total payload bytes).

    With ``pool`` (a process pool) the images go to its workers in 8 contiguous chunks; the
    codecs are single-threaded C libraries, so this scales with the cores.
    """
    if pool is not None:
        chunks = [c for c in np.array_split(images, 8) if len(c)]
        parts = list(pool.map(code_images, [name] * len(chunks), chunks, [quality] * len(chunks)))
        return (
            np.concatenate([p[0] for p in parts]),
            sum(p[1] for p in parts),
            sum(p[2] for p in parts),
        )
    enc, dec, payload = _codec_table()[name]
    out = np.empty_like(images)
    total = total_payload = 0
    for i, img in enumerate(images):
        b = bytes(enc(img, quality))
        total += len(b)
        total_payload += payload(b)
        out[i] = _back(np.asarray(dec(b)), images.shape[3])
    return out, total, total_payload


def evaluate_classical(
    images: np.ndarray,
    featnet_path: str | Path | None,
    names: list[str] | None = None,
    image_size: int = 32,
    qualities: dict[str, list[int]] | None = None,
    workers: int = 1,
) -> dict[str, list[dict[str, float]]]:
    """Sweep each codec's quality on uint8 images (N, H, W, C); the metrics of every point.

    ``workers`` > 1 encodes and decodes in that many processes (the metrics stay here).
    """
    if workers > 1:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            return _evaluate_classical(images, featnet_path, names, image_size, qualities, pool)
    return _evaluate_classical(images, featnet_path, names, image_size, qualities, None)


def _evaluate_classical(
    images: np.ndarray,
    featnet_path: str | Path | None,
    names: list[str] | None,
    image_size: int,
    qualities: dict[str, list[int]] | None,
    pool: Executor | None,
) -> dict[str, list[dict[str, float]]]:
    n, h, w, c = images.shape
    pixels = n * h * w
    usable = set(available())
    results: dict[str, list[dict[str, float]]] = {}
    x = to_float(torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2))
    for name in names or list(QUALITIES):
        if name not in usable:
            continue
        points = []
        for q in (qualities or QUALITIES)[name]:
            dec, total, payload = code_images(name, images, q, pool)
            x_hat = to_float(torch.from_numpy(dec).permute(0, 3, 1, 2))
            point = {
                "quality": float(q),
                "bpp_file": 8.0 * total / pixels,
                "bpp_payload": 8.0 * payload / pixels,
                "bits_file": 8.0 * total / n,
                "mse": metrics.mse(x_hat, x),
                "psnr": metrics.psnr(x_hat, x),
            }
            if featnet_path is not None:
                r = metrics.fid_kid(
                    to_tensor(images, image_size), to_tensor(dec, image_size), featnet_path
                )
                point |= {f"r{k}": v for k, v in r.items()}
            points.append(point)
        results[name] = points
    return results
