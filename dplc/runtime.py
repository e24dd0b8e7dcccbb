"""The torch-free codec: ``.dplc`` files <-> images with ONNX Runtime, numpy and constriction.

A codec folder written by training holds, beside ``codec.json``, ``weights.safetensors`` and
``entropy.json``, the ONNX graphs of :mod:`dplc.onnx_export`. :class:`RuntimeCodec` runs those
graphs; :func:`compress` and :func:`decompress` read and write the same files as the torch
reference path (:mod:`dplc.files`), with the same pixels (:mod:`dplc.pixels`), quantizer
centres and counter-based decoder noise (:mod:`dplc.noise`), so the two decoders agree up to
float rounding in the networks (≤ 1 grey level). A receiver needs only this module's
dependencies: ``pip install dplc`` without extras.

>>> from dplc.runtime import quantizer_centers
>>> quantizer_centers(4).tolist()
[-0.75, -0.25, 0.25, 0.75]
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from dplc import noise as noise_lib
from dplc import pixels
from dplc.bitstream import (
    MAX_IMAGES,
    Header,
    check_model,
    check_seed,
    unpack,
)
from dplc.config import CODE_GRID, NetConfig, from_dict
from dplc.digest import file_sha256
from dplc.entropy import ENTROPY_FILE, EntropyModel, load_entropy_model
from dplc.folder import CODEC_FILE, DECODER_FILE, ENCODER_FILE, ONNX_FILE
from dplc.payload import decode_payload, write_file

CHUNK = 256
"""Images per ONNX Runtime call."""


class RuntimeUnavailableError(RuntimeError):
    """The torch-free runtime cannot serve this codec or file (the message says why and what to do)."""


def quantizer_centers(levels: int) -> np.ndarray:
    """The L centres ``-1 + Δ/2 + lΔ``, Δ = 2/L, in float32 (as :func:`dplc.quantize.centers`)."""
    delta = 2.0 / levels
    return np.array([-1.0 + delta / 2 + i * delta for i in range(levels)], dtype=np.float32)


def to_symbols(code: np.ndarray, levels: int) -> np.ndarray:
    """E's output -> symbols: ``floor((x + 1) / Δ)`` clamped to 0..L-1 (NaN -> 0), as uint8."""
    idx = np.floor((code.astype(np.float32) + np.float32(1.0)) / np.float32(2.0 / levels))
    return np.clip(np.nan_to_num(idx, nan=0.0), 0, levels - 1).astype(np.uint8)


def has_onnx(folder: str | Path) -> bool:
    """Whether ``folder`` holds the ONNX export of its codec."""
    return (Path(folder) / ONNX_FILE).is_file()


class RuntimeCodec:
    """A codec folder's ONNX graphs, quantizer and entropy model (no torch)."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        d = Path(folder)
        self.folder = d
        desc = self._read_json(d / CODEC_FILE)
        record = self._read_json(d / ONNX_FILE)
        self.net: NetConfig = from_dict(NetConfig, desc["net"])
        self.mode: str = desc["mode"]
        self.weights_sha256: str = desc.get("weights_sha256", "")
        if record.get("weights_sha256") != self.weights_sha256:
            raise RuntimeUnavailableError(
                f"{d}: the ONNX graphs were exported from other weights than codec.json's; "
                f"export them again (python -m dplc.compress export {d})"
            )
        for name, digest in record.get("files", {}).items():
            if file_sha256(d / name) != digest:
                raise RuntimeUnavailableError(f"{d / name} does not match the SHA-256 in {ONNX_FILE}")
        self.entropy: EntropyModel | None = (
            load_entropy_model(d) if (d / ENTROPY_FILE).is_file() else None
        )
        self.noise_spec = noise_lib.spec_for(
            self.mode, self.net.latent_dim, self.net.noise_channels, CODE_GRID, 2.0 / self.net.levels
        )
        self.centers = quantizer_centers(self.net.levels)
        self._threads = threads
        self._sessions: dict[str, Any] = {}
        self._files = set(record.get("files", {}))

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any]:
        if not path.is_file():
            raise RuntimeUnavailableError(f"{path} is missing: not a codec folder with an ONNX export")
        try:
            return json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise RuntimeUnavailableError(f"{path} is not valid JSON: {e}") from e

    def _session(self, name: str) -> Any:
        if name not in self._sessions:
            if name not in self._files:
                raise RuntimeUnavailableError(f"{self.folder}: no {name} in the ONNX export")
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.log_severity_level = 3
            options.intra_op_num_threads = self._threads or min(os.cpu_count() or 1, 8)
            self._sessions[name] = ort.InferenceSession(
                str(self.folder / name), options, providers=["CPUExecutionProvider"]
            )
        return self._sessions[name]

    @property
    def geometry(self) -> tuple[int, int, int, int]:
        """(image size, channels, levels, code channels), as :func:`dplc.files.geometry`."""
        net = self.net
        return (net.image_size, net.channels, net.levels, net.code_channels)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Float images (N, channels, S, S) in [-1, 1] -> symbols (N, C, 4, 4) uint8."""
        n = images.shape[0]
        out = np.zeros((n, *self.net.code_shape), dtype=np.uint8)
        if self.net.code_channels == 0:
            return out
        session = self._session(ENCODER_FILE)
        for i in range(0, n, CHUNK):
            (code,) = session.run(None, {"images": images[i : i + CHUNK]})
            out[i : i + CHUNK] = to_symbols(code, self.net.levels)
        return out

    def decode(self, symbols: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Symbols (N, C, 4, 4) and decoder noise -> float images (N, channels, S, S)."""
        session = self._session(DECODER_FILE)
        inputs = {i.name for i in session.get_inputs()}
        values = self.centers[symbols.astype(np.int64)]
        outs = []
        for i in range(0, symbols.shape[0], CHUNK):
            feeds = {"values": values[i : i + CHUNK], "noise": noise[i : i + CHUNK]}
            outs.append(session.run(None, {k: v for k, v in feeds.items() if k in inputs})[0])
        return np.concatenate(outs) if outs else np.zeros((0, *self.net.image_shape), np.float32)


def compress(
    codec: RuntimeCodec,
    images: np.ndarray,
    model_name: str,
    model_version: int,
    seed: int = 0,
    mode: str = "auto",
) -> bytes:
    """uint8 images (N, H, W, channels) -> one ``.dplc`` file, as :func:`dplc.files.compress`."""
    arr = pixels.check_images(images, codec.net.image_size, codec.net.channels, MAX_IMAGES)
    if mode == "ans" and codec.entropy is None:
        raise ValueError("ANS mode needs an entropy model; use mode='fixed' without one")
    n, h, w, c = arr.shape
    symbols = codec.encode(pixels.to_float(pixels.pad_to(arr, codec.net.image_size)))
    return write_file(symbols, (h, w, c), codec.geometry, model_name, model_version,
                      codec.weights_sha256, codec.entropy, seed, mode)  # fmt: skip


def decode_images(header: Header, symbols: np.ndarray, codec: RuntimeCodec, seed: int) -> np.ndarray:
    """Symbols -> uint8 images (N, H, W, channels) with the noise of (seed, i) for image i."""
    if header.version < 2:
        raise RuntimeUnavailableError(
            f"format {header.version} files draw their noise from torch's generator; "
            "decode them with the torch decoder (--backend torch)"
        )
    noise = noise_lib.draw(codec.noise_spec, int(seed) % (1 << 64), symbols.shape[0])
    return pixels.to_pictures(codec.decode(symbols, noise), header.height, header.width)


def decompress(data: bytes, codec: RuntimeCodec, seed: int | None = None) -> np.ndarray:
    """A ``.dplc`` file -> uint8 images (N, H, W, channels), as :func:`dplc.files.decompress`."""
    header, payload = unpack(data)
    check_seed(header, seed)
    check_model(header, codec.weights_sha256, codec.geometry)
    symbols = decode_payload(header, payload, codec.entropy)
    return decode_images(header, symbols, codec, header.seed if seed is None else seed)
