"""E trained towards Lloyd's nearest-neighbour condition, one bit at a time, on the Gaussian source.

    python benchmarks/gaussian_nearest.py 0 1 [--workers 1] [-S shared=encoder ...]

Runs the ``gaussian`` stage's study (:func:`dplc.gaussian_study.run`: params.yaml's
``gaussian`` section, the stage's seed, G*, rates, steps and realism constraint) once per
``nearest_weight`` given (0 is the stage as it is; ``-S key=value`` changes another setting of
the section, the value read as YAML), and appends per run one JSON line to
``reports/bench/gaussian_nearest.jsonl``: every codec's MSE over its one-shot bound (CAE over
D_K; DPLC and shared DPLC over 2·D_K), their decoded-variance errors (the largest, and per rate
and component), the codes' final
λ_rate and held-out latent MMD, the shared codec's MSE when decoded with another seed's noise
(how much its code depends on the noise), and the environment.

The straight-through gradient of the quantizer does not place E's cell boundaries where the
decoder's codes would put them (Lloyd's condition: each source vector in the cell whose decode
is nearest); :func:`dplc.gaussian.nearest_neighbour_loss` adds that condition one bit at a time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.jsonl import append  # noqa: E402
from dplc.gaussian import GaussianConfig  # noqa: E402
from dplc.gaussian_study import run  # noqa: E402

OUT = ROOT / "reports" / "bench" / "gaussian_nearest.jsonl"
KEYS = ("gaussian_cae_over_dk", "gaussian_dplc_over_2dk", "gaussian_shared_over_2dk",
        "gaussian_dplc_variance_error_max", "gaussian_shared_variance_error_max",
        "lambda_rate_dplc", "lambda_rate_dplc_shared", "holdout_mmd_sd_dplc", "holdout_mmd_sd_dplc_shared",
        "holdout_moment_sd_dplc", "holdout_moment_sd_dplc_shared",
        "mse_cae", "mse_dplc", "mse_dplc_shared", "mse_wrong_noise_dplc_shared", "d_k", "bits",
        "variance_error_dplc", "variance_error_dplc_shared", "generator_w2_over_sigma2", "generator_variance_error")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("weights", nargs="+", type=float, help="nearest_weight values (0: the stage as it is)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("-S", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    sets = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.sets)}
    for w in args.weights:
        cfg = GaussianConfig.from_dict(params["gaussian"] | sets | {"seed": int(params["seed"]), "nearest_weight": w,
                                                                    "workers": args.workers})  # fmt: skip
        t0 = time.time()
        res = run(cfg)
        row = {"nearest_weight": w, "nearest_draws": cfg.nearest_draws, "settings": sets} | {k: res.get(k) for k in KEYS}
        append(OUT, row | {"seconds": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d")})


if __name__ == "__main__":
    main()
