"""Shared decoder noise on the Gaussian source: the two forms of ``dplc_shared`` against
private-noise DPLC, with the same seeds, steps and realism constraint.

    python benchmarks/shared_noise.py [--params params.yaml] [--out reports/bench/shared_noise.json]

Runs the Gaussian experiment of params.yaml (``gaussian``) twice: once with CAE, DPLC and
``dplc_shared`` in the ``encoder`` form (E sees U), once with ``dplc_shared`` alone in the
``dither`` form (code Q(E(x) + D) − D). Both DPLCs share G* (the same seed trains the same G*)
and every codec's seeds. Prints per rate MSE / (2·D_K), D(R, 0) / D_K and the largest
decode-variance error, and writes them with the CPU model, the torch version and the seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import gaussian, gaussian_study  # noqa: E402
from pipelines import environment  # noqa: E402


def _rows(res: dict, name: str) -> dict:
    return {
        "mse": res[f"mse_{name}"],
        "over_2dk": [m / (2 * d) for m, d in zip(res[f"mse_{name}"], res["d_k"], strict=True)],
        "variance_error_max": [max(abs(e) for e in v) for v in res[f"variance_error_{name}"]],
        "holdout_mmd_sd": res[f"holdout_mmd_sd_{name}"],
        "lambda_rate": res[f"lambda_rate_{name}"],
        "mse_wrong_noise": res[f"mse_wrong_noise_{name}"],
        "variance_error_wrong_noise_max": [max(map(abs, v)) if v else None for v in res[f"variance_error_wrong_noise_{name}"]],
    }


def arms(base: gaussian.GaussianConfig) -> dict[str, gaussian.GaussianConfig]:
    """The two runs: CAE, DPLC and ``dplc_shared`` in the ``encoder`` form, and ``dplc_shared``
    alone in the ``dither`` form, which trains from its seeds only (the ``private`` and ``cae``
    starts continue a private DPLC or a CAE that this run does not train). Both take the
    section's starts at every rate: a rate's own (``per_rate``) may lack the starts a learned
    shared form trains from."""
    per_rate = {c: {k: v for k, v in s.items() if k != "starts"} for c, s in base.per_rate.items()}
    base = dataclasses.replace(base, per_rate={c: s for c, s in per_rate.items() if s})
    return {
        "encoder": dataclasses.replace(base, codecs=("cae", "dplc", "dplc_shared"), shared="encoder"),
        "dither": dataclasses.replace(base, codecs=("dplc_shared",), shared="dither", starts=("scratch",)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "shared_noise.json")
    args = ap.parse_args()
    base = gaussian.GaussianConfig.from_dict(yaml.safe_load(args.params.read_text())["gaussian"])
    t0 = time.perf_counter()
    runs = {name: gaussian_study.run(cfg) for name, cfg in arms(base).items()}
    ref = runs["encoder"]
    out = {
        "bits": ref["bits"],
        "d_k": ref["d_k"],
        "d_common_over_d_k": [c / k for c, k in zip(ref["d_common"], ref["d_k"], strict=True)],
        "cae_over_dk": ref["gaussian_cae_over_dk"],
        "dplc": _rows(ref, "dplc"),
        "dplc_shared_encoder": _rows(runs["encoder"], "dplc_shared"),
        "dplc_shared_dither": _rows(runs["dither"], "dplc_shared"),
        "config": ref["config"],
        "seconds": time.perf_counter() - t0,
        "environment": environment.describe(),
    }
    print(f"{'bits':>5} {'D(R,0)/D_K':>10} | {'MSE/(2·D_K)':^29} | {'variance error max':^29}")
    print(f"{'':>5} {'':>10} | {'private':>9} {'encoder':>9} {'dither':>9} | {'private':>9} {'encoder':>9} {'dither':>9}")
    for i, b in enumerate(out["bits"]):
        cols = [out[k]["over_2dk"][i] for k in ("dplc", "dplc_shared_encoder", "dplc_shared_dither")]
        errs = [out[k]["variance_error_max"][i] for k in ("dplc", "dplc_shared_encoder", "dplc_shared_dither")]
        print(f"{b:5g} {out['d_common_over_d_k'][i]:10.3f} | " + " ".join(f"{c:9.3f}" for c in cols)
              + " | " + " ".join(f"{e:9.3f}" for e in errs))  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
