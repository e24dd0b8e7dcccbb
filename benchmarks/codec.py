"""Codec throughput, rates and robustness of the ``.dplc`` format (wall-clock cost and format robustness).

For every rate of the default 32x32 ladder (C ∈ {0, 1, 4, 16, 64}, L = 2) and the default
widths (``NetConfig(width=32, latent_dim=32, critic_width=16)``), with an untrained codec
(``torch.manual_seed(0)``; speed does not depend on training):

* ``compress_images_per_s``: images -> ``.dplc`` bytes (encoder, quantizer, ANS, container)
  at batch 256; ``decompress_images_per_s``: bytes -> uint8 images (parse, CRC, model check,
  ANS, decoder) at batch 256 with the default fused fp32 decoder, and also with the fused bf16
  one and the unfused reference ``Codec.decode``. Best of ``--repeats`` timed runs after a
  warm-up (the machine is shared; the median is reported too).
* ``entropy_coding_time_share``: ANS encode + decode time over compress + decompress time.
* bits per image, measured on test images with an entropy model fitted on the codec's own
  symbols of training images: ``bits_fixed`` (C·16·log2 L), ``bits_ideal`` (Σ −log2 p),
  ``bits_payload`` (real ANS payload, files of 256 images) and ``bits_file`` (with the header).
  Untrained encoders emit nearly constant or nearly fair bits, so the payload/fixed ratio here
  says little about a trained codec; the coder overhead (payload over ideal) does.
* the fast decoders' quality: PSNR (dB, test images vs decodes) of the fused fp32, fused bf16
  and reference decodes with the same seed, their differences and the largest pixel change;
  the flat ``*_psnr_delta_db_max`` keys come from :func:`quality`, a codec whose decodes
  actually vary (an untrained generator's are nearly constant and would hide any error).
* fuzzing: ``--fuzz`` mutated or truncated files (each must raise a ``BitstreamError``), and
  as many forged ones with a recomputed CRC (a ``BitstreamError`` or a clean decode).

Data: ``data/prepared`` (``dplc.data.read_split``) when it exists, else Fashion-MNIST
(``dplc.sources.load_fashion_mnist``). Prints a table and writes ``reports/bench/codec.json``.

    python benchmarks/codec.py [--threads 2] [--repeats 7] [--fuzz 10000] [--trained DIR ...]

``--trained`` adds the bits and fast-decoder quality of trained codec folders (``codec.json``,
``weights.safetensors``, ``entropy.json``), the figures that matter for the rate targets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dplc import bitstream
from dplc.bitstream import BitstreamError
from dplc.codec import Codec, build_codec
from dplc.config import NetConfig
from dplc.data import ImageArray, read_split, to_float, to_tensor
from dplc.entropy import EntropyModel, ans_decode, ans_encode, load_entropy_model
from dplc.files import compress, decompress
from dplc.sources import load_fashion_mnist

RATES = (0, 1, 4, 16, 64)
BATCH = 256


def crc_fix(data: bytes) -> bytes:
    """Recompute the trailing CRC-32 of ``data`` (a forged file that passes the checksum)."""
    body = bytes(data[:-4])
    return body + zlib.crc32(body).to_bytes(4, "big")


def load_data(prepared: Path, n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray, str]:
    """uint8 train and test images (N, H, W, C) and the name of their source."""
    if (prepared / "manifest.json").is_file():
        train: ImageArray = read_split(prepared, "train", limit=n_train)
        test: ImageArray = read_split(prepared, "test", limit=n_test)
        return train.images, test.images, str(prepared)
    splits = load_fashion_mnist()
    return splits["train"].images[:n_train], splits["test"].images[:n_test], "fashion_mnist"


def timed(fn: Any, repeats: int) -> tuple[float, float]:
    """Best and median seconds of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB on [0, 255] over the whole batch."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def make_codec(channels: int) -> Codec:
    torch.manual_seed(0)
    net = NetConfig(width=32, latent_dim=32, critic_width=16, code_channels=channels)
    return build_codec(net, "map" if channels else "prior").eval()


def quality(channels: int, test: np.ndarray) -> dict[str, Any]:
    """Fused fp32 and bf16 decodes vs the reference, on a codec whose outputs vary.

    An untrained generator's decodes are nearly constant, which would hide rounding errors, so
    here every BatchNorm gain is drawn from U[2, 4] (seeded): activations grow layer by layer
    and the decodes span the pixel range, a harder case than a trained codec.
    """
    codec = make_codec(channels)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in codec.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) * 2 + 2)
    model = EntropyModel.uniform(channels, codec.net.levels)
    data = compress(codec, model, test[:BATCH], "quality", 1, seed=0, mode="fixed")
    ref = decompress(data, codec, None, fused=False)
    out: dict[str, Any] = {
        "quality_decode_pixel_std": float(ref.std()),
        "quality_psnr_reference_db": psnr(test[:BATCH], ref),
    }
    for label, precision in (("fused", "fp32"), ("bf16", "bf16")):
        dec = decompress(data, codec, None, precision=precision, fused=True)
        diff = np.abs(dec.astype(int) - ref.astype(int))
        out[f"quality_{label}_psnr_delta_db"] = abs(
            psnr(test[:BATCH], dec) - psnr(test[:BATCH], ref)
        )
        out[f"quality_{label}_psnr_vs_reference_db"] = psnr(dec, ref)
        out[f"quality_{label}_max_abs_pixel_difference"] = int(diff.max())
    return out


def trained_check(folder: Path, test: np.ndarray) -> dict[str, Any]:
    """Bits and fast-decoder quality of a trained codec folder (codec.json, entropy.json)."""
    codec = Codec.load(folder)
    model = load_entropy_model(folder)
    images = test[: 4 * BATCH]
    out: dict[str, Any] = {"folder": str(folder), "code_channels": codec.net.code_channels}
    payload = 0
    for i in range(0, len(images), BATCH):
        data = compress(codec, model, images[i : i + BATCH], "trained", 1, mode="ans")
        payload += 8 * bitstream.read_header(data).payload_length
    symbols = codec.encode(to_float(to_tensor(images, codec.net.image_size)))
    out["bits_fixed"] = codec.net.bits_per_image
    out["bits_ideal"] = model.information_bits(symbols) / len(images)
    out["bits_payload"] = payload / len(images)
    if codec.net.code_channels:
        out["payload_to_fixed_ratio"] = out["bits_payload"] / out["bits_fixed"]
    data = compress(codec, model, images[:BATCH], "trained", 1, mode="fixed")
    ref = decompress(data, codec, None, fused=False)
    out["psnr_reference_db"] = psnr(images[:BATCH], ref)
    for label, precision in (("fused", "fp32"), ("bf16", "bf16")):
        dec = decompress(data, codec, None, precision=precision, fused=True)
        out[f"{label}_psnr_delta_db"] = abs(psnr(images[:BATCH], dec) - out["psnr_reference_db"])
        out[f"{label}_max_abs_pixel_difference"] = int(
            np.abs(dec.astype(int) - ref.astype(int)).max()
        )
    return out


def bench_rate(
    channels: int, train: np.ndarray, test: np.ndarray, repeats: int
) -> tuple[dict[str, Any], Codec, EntropyModel]:
    codec = make_codec(channels)
    size = codec.net.image_size
    model = EntropyModel.fit(codec.encode(to_float(to_tensor(train, size))), codec.net.levels)
    sha = codec.weights_hash()
    batch = test[:BATCH]

    def do_compress() -> bytes:
        return compress(codec, model, batch, "bench", 1, seed=0, mode="ans", weights_sha256=sha)

    data = do_compress()
    out: dict[str, Any] = {"code_channels": channels, "levels": codec.net.levels}
    best, median = timed(do_compress, repeats)
    out["compress_images_per_s"] = BATCH / best
    out["compress_images_per_s_median"] = BATCH / median
    # decoders: "fp32" the fused fp32 copy (the default of files and the CLI), "bf16" the fused
    # bf16 copy, "reference" the unfused fp32 Codec.decode
    variants = {"fp32": ("fp32", True), "bf16": ("bf16", True), "reference": ("fp32", False)}
    dec_time = {}
    decoded = {}
    for label, (precision, fused) in variants.items():

        def do_decompress(p: str = precision, f: bool = fused) -> np.ndarray:
            return decompress(data, codec, model, weights_sha256=sha, precision=p, fused=f)

        best, median = timed(do_decompress, repeats)
        dec_time[label] = best
        decoded[label] = do_decompress()
        out[f"decompress_images_per_s_{label}"] = BATCH / best
        out[f"decompress_images_per_s_{label}_median"] = BATCH / median
        out[f"psnr_{label}_db"] = psnr(batch, decoded[label])
    for label in ("fp32", "bf16"):
        diff = np.abs(decoded[label].astype(int) - decoded["reference"].astype(int))
        out[f"{label}_psnr_delta_db"] = abs(out[f"psnr_{label}_db"] - out["psnr_reference_db"])
        out[f"{label}_max_abs_pixel_difference"] = int(diff.max())
        out[f"{label}_psnr_vs_reference_db"] = psnr(decoded[label], decoded["reference"])

    # entropy coding alone, on the same symbols
    symbols = codec.encode(to_float(to_tensor(batch, size)))
    payload = ans_encode(symbols, model)
    enc, _ = timed(lambda: ans_encode(symbols, model), repeats)
    dec, _ = timed(lambda: ans_decode(payload, model, BATCH), repeats)
    codec_time = BATCH / out["compress_images_per_s"] + dec_time["fp32"]
    out["entropy_encode_s"] = enc
    out["entropy_decode_s"] = dec
    out["entropy_coding_time_share"] = (enc + dec) / codec_time

    # rates on the whole test set, in files of BATCH images
    all_symbols = codec.encode(to_float(to_tensor(test, size)))
    n = len(test)
    payload_bits = 0
    file_bits = 0
    for i in range(0, n, BATCH):
        file = compress(codec, model, test[i : i + BATCH], "bench", 1, weights_sha256=sha)
        header = bitstream.read_header(file)
        payload_bits += 8 * header.payload_length
        file_bits += 8 * len(file)
    out["bits_fixed"] = codec.net.bits_per_image
    out["bits_ideal"] = model.information_bits(all_symbols) / n
    out["bits_payload"] = payload_bits / n
    out["bits_file"] = file_bits / n
    out["payload_to_fixed_ratio"] = out["bits_payload"] / out["bits_fixed"] if channels else None
    out["coder_overhead_fraction"] = (
        out["bits_payload"] / out["bits_ideal"] - 1 if out["bits_ideal"] > 0 else None
    )
    out["test_images"] = n
    out |= quality(channels, test)
    return out, codec, model


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    """A truncated, bit-flipped, overwritten, extended or shortened copy of ``data``."""
    n = len(data)
    kind = rng.integers(6)
    at = int(rng.integers(n))
    if kind == 0:
        return data[:at]
    if kind == 1:
        b = bytearray(data)
        for pos in rng.choice(n, size=int(rng.integers(1, 5)), replace=False):
            b[pos] ^= int(rng.integers(1, 256))
        return bytes(b)
    if kind == 2:
        chunk = rng.bytes(int(rng.integers(1, 17)))
        out = data[:at] + chunk + data[at + len(chunk) :]
        return out if out != data else data[:-1]
    if kind == 3:
        return data[:at] + rng.bytes(int(rng.integers(1, 17))) + data[at:]
    if kind == 4:
        return data[:at] + data[at + int(rng.integers(1, 9)) :]
    return data + rng.bytes(int(rng.integers(1, 17)))


def fuzz(codec: Codec, model: EntropyModel, test: np.ndarray, cases: int, forged: int) -> dict:
    """Mutated files must raise BitstreamError; CRC-fixed forgeries may also decode cleanly."""
    rng = np.random.default_rng(0)
    sha = codec.weights_hash()
    files = [
        compress(codec, model, test[:k], "fuzz", 1, seed=k, mode=mode, weights_sha256=sha)
        for k in (1, 4)
        for mode in ("ans", "fixed")
    ]
    clean = other = 0
    kinds: dict[str, int] = {}
    t0 = time.perf_counter()
    for _ in range(cases):
        data = mutate(rng, files[int(rng.integers(len(files)))])
        try:
            decompress(data, codec, model, weights_sha256=sha)
            other += 1
        except BitstreamError as e:
            clean += 1
            kinds[type(e).__name__] = kinds.get(type(e).__name__, 0) + 1
        except Exception:  # noqa: BLE001 - counting, not handling
            other += 1
    seconds = time.perf_counter() - t0
    f_clean = f_ok = f_other = 0
    for _ in range(forged):
        data = mutate(rng, files[int(rng.integers(len(files)))])
        if len(data) < 8:
            data = data + bytes(8)
        try:
            out = decompress(crc_fix(data), codec, model, weights_sha256=sha)
            f_ok += int(out.ndim == 4)
            f_other += int(out.ndim != 4)
        except BitstreamError:
            f_clean += 1
        except Exception:  # noqa: BLE001
            f_other += 1
    return {
        "fuzz_cases": cases,
        "fuzz_clean_errors": clean,
        "fuzz_other_outcomes": other,
        "fuzz_seconds": seconds,
        "fuzz_error_kinds": dict(sorted(kinds.items())),
        "fuzz_forged_cases": forged,
        "fuzz_forged_clean_errors": f_clean,
        "fuzz_forged_decoded": f_ok,
        "fuzz_forged_other_outcomes": f_other,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--fuzz", type=int, default=10_000)
    ap.add_argument("--forged", type=int, default=2_000)
    ap.add_argument("--train", type=int, default=8192, help="training images to fit entropy models")
    ap.add_argument("--test", type=int, default=2048, help="test images for the rates")
    ap.add_argument("--data", type=Path, default=Path("data/prepared"))
    ap.add_argument("--out", type=Path, default=Path("reports/bench/codec.json"))
    ap.add_argument(
        "--trained", type=Path, nargs="*", default=[], help="trained codec folders to check too"
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()[0]  # other work on the machine skews every figure

    train, test, source = load_data(args.data, args.train, args.test)
    rates = []
    codec = model = None
    for channels in RATES:
        row, c, m = bench_rate(channels, train, test, args.repeats)
        rates.append(row)
        if channels == 4:
            codec, model = c, m
        print(
            f"C={channels:>2}  compress {row['compress_images_per_s']:>7.0f}/s  decompress "
            f"{row['decompress_images_per_s_fp32']:>5.0f}/s (bf16 "
            f"{row['decompress_images_per_s_bf16']:>5.0f}, reference "
            f"{row['decompress_images_per_s_reference']:>5.0f})  entropy "
            f"{100 * row['entropy_coding_time_share']:4.1f}%  bits fixed {row['bits_fixed']:.0f} "
            f"ideal {row['bits_ideal']:.1f} payload {row['bits_payload']:.1f}  ΔPSNR fused "
            f"{row['quality_fused_psnr_delta_db']:.4f} bf16 {row['quality_bf16_psnr_delta_db']:.4f} dB"
        )
    assert codec is not None and model is not None
    fuzzed = fuzz(codec, model, test, args.fuzz, args.forged)
    print(
        f"fuzz: {fuzzed['fuzz_clean_errors']}/{fuzzed['fuzz_cases']} clean BitstreamErrors, "
        f"{fuzzed['fuzz_other_outcomes']} other; forged with a valid CRC: "
        f"{fuzzed['fuzz_forged_clean_errors']} errors, {fuzzed['fuzz_forged_decoded']} decoded, "
        f"{fuzzed['fuzz_forged_other_outcomes']} other"
    )
    trained = [trained_check(folder, test) for folder in args.trained]
    for row in trained:
        print(
            f"trained {row['folder']}: bits fixed {row['bits_fixed']:.0f} ideal "
            f"{row['bits_ideal']:.1f} payload {row['bits_payload']:.1f}; ΔPSNR fused "
            f"{row['fused_psnr_delta_db']:.4f} bf16 {row['bf16_psnr_delta_db']:.4f} dB"
        )
    positive = [r for r in rates if r["code_channels"] > 0]
    overheads = [r["coder_overhead_fraction"] for r in positive if r["coder_overhead_fraction"]]
    report = {
        "compress_images_per_s": min(r["compress_images_per_s"] for r in rates),
        "decompress_images_per_s": min(r["decompress_images_per_s_fp32"] for r in rates),
        "decompress_images_per_s_bf16": min(r["decompress_images_per_s_bf16"] for r in rates),
        "decompress_images_per_s_reference": min(
            r["decompress_images_per_s_reference"] for r in rates
        ),
        "decompress_decoder": "fused fp32 (Codec.decode(fused=True)), the default of files",
        "fused_psnr_delta_db_max": max(r["quality_fused_psnr_delta_db"] for r in rates),
        "bf16_psnr_delta_db_max": max(r["quality_bf16_psnr_delta_db"] for r in rates),
        "fused_max_abs_pixel_difference": max(
            r["quality_fused_max_abs_pixel_difference"] for r in rates
        ),
        "bf16_max_abs_pixel_difference": max(
            r["quality_bf16_max_abs_pixel_difference"] for r in rates
        ),
        "entropy_coding_time_share": max(r["entropy_coding_time_share"] for r in rates),
        "payload_to_fixed_ratio_max": max(r["payload_to_fixed_ratio"] for r in positive),
        "coder_overhead_fraction_max": max(overheads) if overheads else None,
        **fuzzed,
        "rates": rates,
        "trained": trained,
        "batch_images": BATCH,
        "threads": args.threads,
        "data": source,
        "models": "untrained, NetConfig(width=32, latent_dim=32, critic_width=16), L=2",
        "note": "flat throughputs are the minimum over rates (best of repeats); time share, "
        "ratios and overheads the maximum; bits are per image",
        "load_average_1min_at_start": load_at_start,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"compress {report['compress_images_per_s']:.0f} images/s, decompress "
        f"{report['decompress_images_per_s']:.0f} images/s (bf16 "
        f"{report['decompress_images_per_s_bf16']:.0f}, reference "
        f"{report['decompress_images_per_s_reference']:.0f}), entropy coding "
        f"{100 * report['entropy_coding_time_share']:.1f}% -> {args.out}"
    )


if __name__ == "__main__":
    main()
