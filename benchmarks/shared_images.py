"""dplc_shared on images: the encoder sees the decoder's noise; against DPLC and CAE at the same rates.

    python benchmarks/shared_images.py [--rates 1 4] [--test-images 10000]

Trains ``dplc_shared`` into the default profile's Wasserstein++ G* exactly as the train stage
trains ``dplc`` (the same params section, tuned settings, steps, seed + C and realism
constraint), in this process, then evaluates it with :func:`dplc.evaluation.evaluate_codec`
on the test split (PV for a shared-noise codec is E Var(X̂ | X) over shared seeds with
re-encoding each time). DPLC's and CAE's figures at the same rates are read from the evaluate
stage's ``runs/eval/c<C>.json`` (same test images, same metrics). Writes
``reports/bench/shared_images.json``; a trained codec is kept under ``runs/shared_images/`` so
an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, entropy, evaluation  # noqa: E402
from dplc.bundle import CodecBundle  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.rate_methods import DPLC  # noqa: E402
from dplc.train import export_codec, fit, setup  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "shared_images.json"
WORK = L.RUNS / "shared_images"
FIELDS = ("mse", "psnr", "rfid_featnet", "rfid_featnet_sd", "pv", "mse_mean_decode", "latent_mmd_sd",
          "bits_payload", "lambda_rate")  # fmt: skip


def train_shared(params: dict, rate: int, images: torch.Tensor) -> Path:
    """dplc_shared at ``rate`` with the train stage's config for dplc; its codec folder."""
    out = WORK / f"c{rate}" / "codec"
    if (out / "codec.json").is_file():
        return out
    cfg = P.train_config(params, "dplc_shared", rate, generator="wpp")
    generator = Codec.load(L.generator_codec("wpp")).generator
    method, batches = setup(cfg, images, generator)
    fit(cfg, method, batches)
    assert isinstance(method, DPLC)
    method.codec.meta["lambda_rate"] = method.dual.lam
    codec = export_codec(method, out)
    symbols = codec.encode_shared(data.to_float(images[:20000]), seed=0)  # random u, as files do
    entropy.EntropyModel.fit(symbols, codec.net.levels).save(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[1, 4], help="code channels C")
    ap.add_argument("--test-images", type=int, default=10000)
    args = ap.parse_args()
    params = P.load()
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    split = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit"))
    images = data.to_tensor(split.images, int(params["data"]["image_size"]))
    test = data.read_split(L.prepared_dir(), "test", limit=args.test_images).images
    e = params["evaluate"]
    t0 = time.perf_counter()
    result: dict = {"rates": args.rates, "test_images": int(test.shape[0]), "per_rate": {}}
    for rate in args.rates:
        bundle = CodecBundle.load(train_shared(params, rate, images), name=P.codec_name("dplc_shared", "wpp"))
        m = evaluation.evaluate_codec(bundle, test, L.featnet_weights(),
                                      pv_batch=int(e["pv_batch"]), pv_repeats=int(e["pv_repeats"]))  # fmt: skip
        m["lambda_rate"] = float(bundle.codec.meta.get("lambda_rate", float("nan")))
        stage = json.loads(L.eval_file(rate).read_text())["codecs"]
        row = {"bits_per_image": P.net_config(params, rate).bits_per_image}
        for name, figures in (("dplc_shared", m), ("dplc", stage["dplc_wpp"]), ("cae", stage["cae"])):
            row |= {f"{k}_{name}": figures.get(k) for k in FIELDS if figures.get(k) is not None}
        row["mse_ratio_shared_dplc"] = m["mse"] / stage["dplc_wpp"]["mse"]
        row["mse_ratio_shared_cae"] = m["mse"] / stage["cae"]["mse"]
        result["per_rate"][str(rate)] = row
        print(f"C={rate}: dplc_shared MSE {m['mse']:.4f} (DPLC {stage['dplc_wpp']['mse']:.4f}, CAE "
              f"{stage['cae']['mse']:.4f}), rFID {m['rfid_featnet']:.3f}, latent MMD "
              f"{m.get('latent_mmd_sd', float('nan')):.2f} sd, PV {m['pv']:.4g} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["environment"] = environment.describe()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
