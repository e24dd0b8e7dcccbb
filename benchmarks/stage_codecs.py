"""The train stage's DPLC and CAE codecs at some rates, evaluated as the evaluate stage does.

    python benchmarks/stage_codecs.py 16 64      # code channels C

The evaluate stage needs every codec of the ladder (it depends on all of ``runs/train``); after a
partial rerun this reads the rates whose DPLC and CAE stages have finished. Each codec is scored
on the first 10,000 test images by ``benchmarks/seeds.py``'s :func:`scored` (MSE, rFID, PV,
latent MMD in null s.d., the MSE of the noise-averaged decode, PSNR, bpp) with its final
λ_rate, and each rate gets MSE_DPLC/MSE_CAE. Writes ``reports/bench/stage_codecs.json``, merged
with the rates it already holds, with the machine and package versions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

import seeds as S  # noqa: E402

from dplc import data  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "stage_codecs.json"
KEYS = (*S.FIELDS, "psnr", "bpp_payload")


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    params = P.load()
    torch.set_num_threads(2)
    test = data.read_split(L.prepared_dir(), "test", limit=10000).images
    out = json.loads(OUT.read_text()) if OUT.is_file() else {}
    for rate in (int(a) for a in argv):
        row: dict[str, dict | float] = {}
        for method in ("dplc", "cae"):
            codec_dir = S.stage_codec(params, method, rate)
            m = S.scored(codec_dir, test, params)
            row[method] = {k: m[k] for k in KEYS if k in m and not (method == "cae" and k in ("latent_mmd_sd", "lambda_rate"))}
            print(method, rate, row[method], flush=True)
        row["mse_ratio_dplc_cae"] = row["dplc"]["mse"] / row["cae"]["mse"]
        row["bits_per_image"] = P.net_config(params, rate).bits_per_image
        out[str(rate)] = row
    out["environment"] = environment.describe()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    print(json.dumps({r: v["mse_ratio_dplc_cae"] for r, v in out.items() if r != "environment"}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
