"""The codec as a product: command-line latency, receiver size, ONNX vs torch decoding.

Writes ``reports/bench/product.json``:

* ``cli_decompress_seconds_64`` / ``cli_compress_seconds_64``: one ``python -m dplc.compress``
  call on a 64-image file with a local codec folder, process start to exit (median of 3), with
  the default backend (ONNX Runtime where the codec has its export); ``*_torch`` the same with
  ``--backend torch``;
* ``receiver_install_mb``: a fresh virtual environment with ``pip install .`` and no extras
  (the receiver's dependencies, versions from requirements.lock), ``du`` of the folder;
* ``onnx_vs_torch_decode_ratio``: images/s of :class:`dplc.runtime.RuntimeCodec` over the fused
  torch decoder (:meth:`dplc.codec.Codec.decode` with ``fused=True``), batch 256, same noise,
  same run; ``onnx_max_abs_grey_level_diff`` over the whole test set's file;
* ``decode_peak_fraction``: decoder FLOPs per image (torch's operator formulas,
  :class:`benchmarks.flops.CountFlops`) × images/s / the fp32 sgemm peak of the same run, for
  ONNX Runtime (``decode_peak_fraction``, the command line's decoder for files under
  :data:`dplc.opened.TORCH_FROM_IMAGES` images) and the fused torch decoder (larger files);
  ``torch_import_break_even_images`` is where torch's faster decoding repays its import.

    python benchmarks/product.py [--codec runs/train/dplc_wpp/4/codec] [--skip-install]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.flops import CountFlops, sgemm_peak_gflops  # noqa: E402
from dplc import data, files, noise, runtime  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.entropy import load_entropy_model  # noqa: E402
from dplc.opened import TORCH_FROM_IMAGES  # noqa: E402
from pipelines import environment  # noqa: E402

OUT = ROOT / "reports" / "bench" / "product.json"
PY = sys.executable


def _cli_seconds(args: list[str], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([PY, "-m", "dplc.compress", *args], check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 3)


def cli_figures(codec_dir: Path, images: np.ndarray, tmp: Path) -> dict[str, float]:
    """Process start to exit of compress and decompress on 64 images, per backend."""
    np.save(tmp / "x.npy", images[:64, ..., 0])
    out: dict[str, float] = {}
    for backend, suffix in (("auto", ""), ("torch", "_torch")):
        blob = tmp / f"x{suffix}.dplc"
        common = ["--model", str(codec_dir), "--backend", backend]
        out[f"cli_compress_seconds_64{suffix}"] = _cli_seconds(
            ["compress", str(tmp / "x.npy"), "-o", str(blob), *common]
        )
        out[f"cli_decompress_seconds_64{suffix}"] = _cli_seconds(
            ["decompress", str(tmp / "x.dplc"), "-o", str(tmp / f"png{suffix}"), *common]
        )
    return out


def receiver_install_mb(tmp: Path) -> float:
    """MiB of a fresh venv after ``pip install -c requirements.lock .`` (no extras)."""
    venv = tmp / "receiver"
    subprocess.run([PY, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    env = os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    src = tmp / "src"  # a copy without .venv, runs/ or caches, as a user would have it
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", "runs", "data", ".git",
                    ".dvc", "mlartifacts", "mlflow.db", "*.egg-info", "__pycache__"))  # fmt: skip
    subprocess.run([*pip, "-c", str(ROOT / "requirements.lock"), str(src)], check=True, env=env)
    check = "import sys, dplc.runtime, dplc.compress; assert 'torch' not in sys.modules"
    subprocess.run([str(venv / "bin" / "python"), "-c", check], check=True, cwd=tmp)
    du = subprocess.run(["du", "-sm", str(venv)], check=True, capture_output=True, text=True)
    return float(du.stdout.split()[0])


def decoder_flops(codec: Codec, n: int = 8) -> float:
    """FLOPs per image of the fused decoder (B and G)."""
    symbols = np.zeros((n, *codec.net.code_shape), np.uint8)
    codec.decode(symbols, fused=True)  # build the inference copy outside the count
    with CountFlops() as counter:
        codec.decode(symbols, fused=True)
    return counter.total / n


def _torch_import_seconds() -> float:
    """Extra seconds a process pays to import torch (median of 3 fresh processes)."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([PY, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _break_even(onnx_ips: float, torch_ips: float) -> float:
    """Images from which the fused torch decoder's speed repays its import."""
    gain = 1 / onnx_ips - 1 / torch_ips
    return _torch_import_seconds() / gain if gain > 0 else float("inf")


def decode_figures(codec_dir: Path, test: np.ndarray) -> dict[str, float]:
    codec, entropy = Codec.load(codec_dir), load_entropy_model(codec_dir)
    rc = runtime.RuntimeCodec(codec_dir)
    blob = files.compress(codec, entropy, test, "bench", 0, seed=1)
    a = files.decompress(blob, codec, entropy).astype(int)
    b = runtime.decompress(blob, rc).astype(int)
    n = 256
    symbols = np.random.default_rng(0).integers(0, codec.net.levels, (n, *codec.net.code_shape))
    symbols = symbols.astype(np.uint8)
    u = noise.draw(codec.noise_spec, 1, n)

    def rate(fn) -> float:  # noqa: ANN001
        fn()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return n / best

    torch_ips = rate(lambda: codec.decode(symbols, fused=True, noise=u))
    onnx_ips = rate(lambda: rc.decode(symbols, u))
    flops = decoder_flops(codec)
    peak = sgemm_peak_gflops()
    return {
        "codec": str(codec_dir.relative_to(ROOT)) if codec_dir.is_relative_to(ROOT) else str(codec_dir),
        "onnx_max_abs_grey_level_diff": int(np.abs(a - b).max()),
        "onnx_grey_levels_differing_fraction": float((a != b).mean()),
        "decode_images_per_s_onnx": round(onnx_ips, 1),
        "decode_images_per_s_torch_fused": round(torch_ips, 1),
        "onnx_vs_torch_decode_ratio": round(onnx_ips / torch_ips, 3),
        "decoder_mflop_per_image": round(flops / 1e6, 3),
        "fp32_matmul_peak_gflops": round(peak, 1),
        "decode_peak_fraction": round(flops * onnx_ips / (peak * 1e9), 3),
        "decode_peak_fraction_torch_fused": round(flops * torch_ips / (peak * 1e9), 3),
        "default_file_decoder": f"onnx below {TORCH_FROM_IMAGES} images, fused torch from there",
        "torch_import_break_even_images": round(_break_even(onnx_ips, torch_ips)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--codec", default="runs/train/dplc_wpp/4/codec")
    ap.add_argument("--skip-install", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    codec_dir = (ROOT / args.codec).resolve()
    if not runtime.has_onnx(codec_dir):
        sys.exit(f"{codec_dir} has no ONNX export: python -m dplc.compress export {codec_dir}")
    test = data.read_split(ROOT / "data" / "prepared", "test").images
    out = json.loads(OUT.read_text()) if OUT.is_file() else {}
    env = environment.describe()
    out |= {"cpu_model": env["cpu_model"], "environment": env}
    out |= decode_figures(codec_dir, test)
    with tempfile.TemporaryDirectory(prefix="dplc-product-") as tmp:
        out |= cli_figures(codec_dir, test, Path(tmp))
        if not args.skip_install:
            out["receiver_install_mb"] = receiver_install_mb(Path(tmp))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "environment"}, indent=2))


if __name__ == "__main__":
    main()
