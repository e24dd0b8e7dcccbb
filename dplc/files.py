"""Images <-> ``.dplc`` files with a torch :class:`~dplc.codec.Codec`: the reference path.

:func:`compress` encodes uint8 images into one file (:mod:`dplc.bitstream`); :func:`decompress`
decodes a file back to uint8 images at the original geometry. The torch-free
:mod:`dplc.runtime` reads and writes the same files with ONNX Runtime.

>>> import numpy as np, torch
>>> from dplc.config import NetConfig
>>> from dplc.codec import build_codec
>>> from dplc.entropy import EntropyModel
>>> _ = torch.manual_seed(0)
>>> codec = build_codec(NetConfig(width=8, latent_dim=16, code_channels=2), "map").eval()
>>> images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
>>> model = EntropyModel.uniform(channels=2, levels=2)
>>> blob = compress(codec, model, images, "doc-codec", 1, seed=7)
>>> decompress(blob, codec, model).shape
(3, 28, 28, 1)
>>> bool((decompress(blob, codec, model) == decompress(blob, codec, model)).all())
True
"""

from __future__ import annotations

import secrets

import numpy as np
import torch

from dplc import noise as noise_lib
from dplc import pixels
from dplc.bitstream import (
    MAX_IMAGES,
    Header,
    check_model,
    check_seed,
    unpack,
)
from dplc.codec import Codec
from dplc.entropy import EntropyModel
from dplc.payload import decode_payload, write_file


def geometry(codec: Codec) -> tuple[int, int, int, int]:
    """(image size, channels, levels, code channels): what a file's header must match."""
    net = codec.net
    return (net.image_size, net.channels, net.levels, net.code_channels)


def _check_entropy_model(codec: Codec, entropy_model: EntropyModel | None, mode: str) -> None:
    if mode == "ans" and entropy_model is None:
        raise ValueError("ANS mode needs an entropy model; use mode='fixed' without one")
    if entropy_model is not None and (
        entropy_model.channels != codec.net.code_channels
        or entropy_model.levels != codec.net.levels
    ):
        raise ValueError(
            f"entropy model covers {entropy_model.channels} channels x {entropy_model.levels} "
            f"levels, the codec has {codec.net.code_channels} x {codec.net.levels}"
        )


def compress(
    codec: Codec,
    entropy_model: EntropyModel | None,
    images: np.ndarray,
    model_name: str,
    model_version: int,
    seed: int | None = None,
    mode: str = "ans",
    weights_sha256: str | None = None,
) -> bytes:
    """uint8 images (N, H, W, channels), H, W ≤ S -> one ``.dplc`` file (format 2; format 3 for
    a codec that shares its noise, :attr:`Codec.shares_noise`).

    Images smaller than the network's S x S are zero-padded (:func:`dplc.pixels.pad_to`) and
    cropped back on decode. ``seed`` is the decoder-noise seed written in the header: with
    private noise it picks which sample a decode shows (0 when not given); with shared noise
    it is part of the code, the encoder reading image i's noise for (seed, i), and it is drawn
    at random per file when not given (a fixed seed would make the codec deterministic across
    files; it is never chosen by looking at the images). ``mode`` is "ans", "fixed" or "auto"
    (whichever payload is smaller, so a file never exceeds the fixed-length budget);
    ``weights_sha256`` may pass a precomputed :meth:`Codec.weights_hash`.
    """
    arr = pixels.check_images(images, codec.net.image_size, codec.net.channels, MAX_IMAGES)
    _check_entropy_model(codec, entropy_model, mode)
    if seed is None:
        seed = secrets.randbits(64) if codec.shares_noise else 0
    n, h, w, c = arr.shape
    padded = torch.from_numpy(pixels.to_float(pixels.pad_to(arr, codec.net.image_size)))
    symbols = codec.encode(padded, fused=True, noise=codec.shared_noise(seed, n))
    return write_file(symbols, (h, w, c), geometry(codec), model_name, model_version,
                      weights_sha256 or codec.weights_hash(), entropy_model, seed, mode,
                      shared_noise=codec.shares_noise)  # fmt: skip


def decompress(
    data: bytes,
    codec: Codec,
    entropy_model: EntropyModel | None,
    seed: int | None = None,
    weights_sha256: str | None = None,
    precision: str = "fp32",
    fused: bool = True,
) -> np.ndarray:
    """A ``.dplc`` file -> uint8 images (N, H, W, channels) at the original geometry.

    ``seed`` None decodes with the header's seed (a repeatable decode); another seed draws other
    decoder noise (another sample of the conditional distribution), except for a file whose
    noise is shared with its encoder (format 3), which :class:`dplc.bitstream.SharedNoiseError` refuses: there
    another seed decodes a wrong image, not another sample. ``precision`` and ``fused``
    are passed to :meth:`Codec.decode` (the fused fp32 inference copy by default: the same
    images as the reference decoder up to float rounding, about twice as fast on a CPU).
    """
    header, payload = unpack(data)
    check_seed(header, seed)
    check_model(header, weights_sha256 or codec.weights_hash(), geometry(codec))
    symbols = decode_payload(header, payload, entropy_model)
    seed = header.seed if seed is None else seed
    return decode_images(header, symbols, codec, seed, precision, fused)


def decode_images(
    header: Header,
    symbols: np.ndarray,
    codec: Codec,
    seed: int,
    precision: str = "fp32",
    fused: bool = True,
) -> np.ndarray:
    """Symbols -> uint8 images (N, H, W, channels), cropped to the header's geometry.

    Format 2 draws image i's noise for (seed, i) (:func:`dplc.noise.draw`); format 1 drew the
    whole file's noise from one ``torch.Generator`` seeded with ``seed``.
    """
    seed = int(seed) % (1 << 64)
    file_noise = None
    if header.version >= 2:
        file_noise = noise_lib.draw(codec.noise_spec, seed, symbols.shape[0])
    decoded = codec.decode(symbols, seed, precision=precision, fused=fused, noise=file_noise)
    return pixels.to_pictures(decoded.numpy(), header.height, header.width)
