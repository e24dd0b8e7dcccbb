"""Evaluation of one codec on a test set: every figure of Tschannen et al. 2018, through a real file.

:func:`evaluate_codec` compresses the test images into one ``.dplc`` file, decodes its payload
once, and scores the decodes with the primitives of :mod:`dplc.metrics`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dplc import bitstream, fid_noise, files
from dplc.bundle import CodecBundle
from dplc.codec import MAP_MODES, Codec
from dplc.data import crop_to, to_float, to_tensor, to_uint8
from dplc.entropy import EntropyModel
from dplc.metrics import fid_kid, inversion_floor, latent_realism_draws, mse, noise_split, psnr
from dplc.payload import decode_payload


def rate_figures(codec: Codec, entropy_model: EntropyModel | None, symbols: np.ndarray,
                 payload_bytes: int, file_bytes: int, n: int, h: int, w: int) -> dict[str, float]:  # fmt: skip
    """Bits per image and bpp: fixed (C·16·log2 L), ideal (the entropy model's information
    content), payload (ANS bytes) and file (header included, the N images in one file)."""
    pixels = n * h * w
    ideal = (entropy_model.information_bits(symbols) if entropy_model is not None
             else codec.bits_per_image * n)  # fmt: skip
    return {
        "images": float(n),
        "bits_fixed": codec.bits_per_image,
        "bits_ideal": ideal / n,
        "bits_payload": 8.0 * payload_bytes / n,
        "bpp_fixed": codec.bits_per_image / (h * w),
        "bpp_ideal": ideal / pixels,
        "bpp_payload": 8.0 * payload_bytes / pixels,
        "bpp_file": 8.0 * file_bytes / pixels,
    }


def pv_decoder(codec: Codec, x: Tensor, h: int, w: int) -> Callable[[int], Tensor]:
    """``decode(seed)`` of the images ``x`` for PV (:func:`~dplc.metrics.noise_split`), cropped to
    h x w: one code decoded with each seed's noise; a shared-noise codec encodes ``x`` again
    with each seed's noise, so PV is E Var(X̂ | X) over shared seeds."""
    if codec.shares_noise:

        def decode_shared(seed: int) -> Tensor:
            u = codec.shared_noise(seed, x.shape[0])
            return crop_to(codec.decode(codec.encode(x, noise=u), noise=u), h, w)

        return decode_shared
    symbols = codec.encode(x)
    return lambda seed: crop_to(codec.decode(symbols, seed=seed), h, w)


def evaluate_codec(
    bundle: CodecBundle,
    test_images: np.ndarray,
    featnet_path: str | Path | None,
    pv_batch: int = 64,
    pv_repeats: int = 100,
    inception_path: str | Path | None = None,
    sample_fid: bool = False,
    realism_n: int = 2000,
    realism_draws: int = 8,
) -> dict[str, float]:
    """Every metric of one codec on uint8 test images (N, H, W, C) at their own size.

    The test images go into one ``.dplc`` file written by the ``bundle`` (seed 0, ANS coded),
    whose payload is decoded once.

    Distortion (MSE on [-1, 1], PSNR on [0, 255]) is measured on the original H x W pixels of
    the decoded file (seed 0); the rates are the file's (:func:`rate_figures`). rFID/KID compare
    the test images with their decodes, sFID with as many generator samples (``sample_fid``,
    ``rfid_featnet_sd`` and ``sfid_featnet_sd`` are their bootstrap s.d., :mod:`dplc.fid_noise`;
    which also measures G*'s :func:`~dplc.metrics.inversion_floor` on the PV images); PV decodes
    the first ``pv_batch`` test images ``pv_repeats`` times with seeds 0..repeats-1
    (:func:`~dplc.metrics.noise_split`); ``latent_mmd_sd`` is the latent realism of the first
    ``realism_n`` test images, the mean of ``realism_draws`` readings, and
    ``latent_mmd_sd_spread`` their s.d. (:func:`~dplc.metrics.latent_realism_draws`).
    """
    n, h, w, _ = test_images.shape
    codec, entropy_model = bundle.codec, bundle.entropy
    blob = bundle.compress(test_images, seed=0, mode="ans")
    header, payload = bitstream.unpack(blob)
    symbols = decode_payload(header, payload, entropy_model)  # decoded once
    decoded = files.decode_images(header, symbols, codec, header.seed)  # uint8 (N, H, W, C)
    x = to_float(torch.from_numpy(np.ascontiguousarray(test_images)).permute(0, 3, 1, 2))
    x_hat = to_float(torch.from_numpy(np.ascontiguousarray(decoded)).permute(0, 3, 1, 2))
    out = rate_figures(codec, entropy_model, symbols, len(payload), len(blob), n, h, w)
    out |= {"mse": mse(x_hat, x), "psnr": psnr(x_hat, x)}
    size = codec.net.image_size
    padded_real = to_tensor(test_images, size)
    if featnet_path is not None or inception_path is not None:
        padded_decoded = to_tensor(decoded, size)
        r = fid_kid(padded_real, padded_decoded, featnet_path, inception_path)
        out |= {f"r{k}": v for k, v in r.items()}
        real_f = fid_noise.featnet_features(padded_real, featnet_path) if featnet_path else None
        if real_f is not None:
            out["rfid_featnet_sd"] = fid_noise.fid_sd(real_f, fid_noise.featnet_features(padded_decoded, featnet_path))
        if sample_fid:
            samples = to_uint8(codec.sample(n, seed=1))
            s = fid_kid(padded_real, samples, featnet_path, inception_path)
            out |= {f"s{k}": v for k, v in s.items()}
            if real_f is not None:
                out["sfid_featnet_sd"] = fid_noise.fid_sd(real_f, fid_noise.featnet_features(samples, featnet_path))
    first = to_float(to_tensor(test_images[:pv_batch], size))
    out |= noise_split(pv_decoder(codec, first, h, w), crop_to(first, h, w), pv_repeats)
    if codec.mode in MAP_MODES and realism_n >= 2:
        latents_of = to_float(to_tensor(test_images[:realism_n], size))
        out["latent_mmd_sd"], out["latent_mmd_sd_spread"] = latent_realism_draws(codec, latents_of, realism_draws)
    if sample_fid:
        out["inversion_floor_mse"] = inversion_floor(codec.generator, first)
    return out
