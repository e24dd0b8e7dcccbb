"""Realism's price read from ε: how much √MSE a looser or tighter realism constraint buys.

    python benchmarks/steps.py --rates 64 --steps 2000 --methods dplc --tag eps2 --per-rate \\
        '{"steps": 2000, "noise": false, "method": {"free_fraction": 0.5, "realism_images": 1024,
          "realism_draws": 1, "mmd_epsilon": 2.0}}'
    python benchmarks/price.py

DPLC minimises √MSE subject to the held-out latent MMD ≤ ε null standard deviations, with the
loss √MSE + λ·MMD (:mod:`dplc.realism`). At a solution of that problem the multiplier of the
constraint in null-s.d. units is μ = −d√MSE*/dε (the sensitivity of the optimum to the bound,
Boyd & Vandenberghe 2004, §5.6.3), and the loss's λ is μ/σ₀, σ₀ the null s.d. of the held-out
MMD. So a codec trained like the train stage's with only ``mmd_epsilon`` changed
(``benchmarks/steps.py`` rows whose ``per_rate`` differs from the stage's only there, same steps
and seed) gives, against the stage's own codec (its row in ``reports/bench/seeds.json``), the
finite difference μ ≈ (√MSE(ε_a) − √MSE(ε_b)) / (ε_b − ε_a) and the λ it implies, μ/σ₀, to set
beside the λ_rate the dual ended at. One pair of runs per ε: its error is the seed spread of
√MSE divided by Δε at most (both runs share the seed and batches).

Writes ``reports/bench/price.json``: per rate, each ε's MSE, test latent MMD, rFID and final
λ_rate, and each neighbouring pair's μ and implied λ.
"""

from __future__ import annotations

import json
import math
import sys
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import realism  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import params as P  # noqa: E402

STEPS = ROOT / "reports" / "bench" / "steps.jsonl"
SEEDS = ROOT / "reports" / "bench" / "seeds.json"
OUT = ROOT / "reports" / "bench" / "price.json"


def _normal(entry: dict | None) -> dict:
    """A per_rate entry with its empty parts dropped, so two spellings of one setting compare equal."""
    entry = dict(entry or {})
    entry["method"] = dict(entry.get("method") or {})
    return {k: v for k, v in entry.items() if v not in ({}, None)}


def epsilon_rows(params: dict, rows: list[dict]) -> dict[int, list[dict]]:
    """Per code-channel count, the ``steps.py`` DPLC rows that are the train stage's codec with
    only ``mmd_epsilon`` changed (same steps, the stage's seed, the stage's per-rate settings)."""
    section = params["train"]["dplc"]
    out: dict[int, list[dict]] = {}
    for row in rows:
        per_rate = row.get("per_rate")
        if row["method"] != "dplc" or not per_rate or "mmd_epsilon" not in (per_rate.get("method") or {}):
            continue
        rate = int(row["rate"])
        rest = _normal(per_rate)
        rest["method"].pop("mmd_epsilon")
        stage = (section.get("per_rate") or {}).get(rate)
        if _normal(rest) != _normal(stage) or row["steps"] != P.train_config(params, "dplc", rate).loop.steps:
            continue
        out.setdefault(rate, []).append(
            {"epsilon": float(per_rate["method"]["mmd_epsilon"]), "tag": row["tag"]}
            | {k: row[k] for k in ("mse", "latent_mmd_sd", "rfid_featnet", "lambda_rate")}
        )  # fmt: skip
    return out


def stage_row(params: dict, seeds: dict, rate: int) -> dict:
    """The train stage's own codec at ``rate`` (its seed's entry in seeds.json), at the params' ε."""
    entry, cfg = seeds["per_rate"][str(rate)], P.train_config(params, "dplc", rate)
    i = entry["seeds"].index(cfg.loop.seed)
    return {"epsilon": cfg.method.mmd_epsilon, "tag": "stage"} | {
        k: entry[f"{k}_dplc"]["values"][i] for k in ("mse", "latent_mmd_sd", "rfid_featnet", "lambda_rate")
    }


def price(a: dict, b: dict, null_sd: float) -> dict:
    """μ = −Δ√MSE/Δε between two ε (null-s.d. units) and the loss's λ it implies, μ/σ₀."""
    mu = (math.sqrt(a["mse"]) - math.sqrt(b["mse"])) / (b["epsilon"] - a["epsilon"])
    return {"epsilons": [a["epsilon"], b["epsilon"]], "mu_sqrt_mse_per_null_sd": mu, "implied_lambda": mu / null_sd}


def main() -> None:
    params = P.load()
    rows = [json.loads(line) for line in STEPS.read_text().splitlines() if line.strip()]
    seeds = json.loads(SEEDS.read_text())
    out: dict = {"per_rate": {}, "environment": environment.describe()}
    for rate, found in sorted(epsilon_rows(params, rows).items()):
        cfg = P.train_config(params, "dplc", rate)
        null = realism.mmd_null(int(cfg.method.realism_holdout), cfg.net.latent_dim, seed=0)
        points = sorted([stage_row(params, seeds, rate), *found], key=lambda r: r["epsilon"])
        pairs = [price(a, b, null.sd) for a, b in pairwise(points)]
        out["per_rate"][str(rate)] = {"null_sd": null.sd, "points": points, "prices": pairs}
        for p in points:
            print(f"C={rate} ε={p['epsilon']:g}: MSE {p['mse']:.4f} latent MMD {p['latent_mmd_sd']:.2f} "
                  f"rFID {p['rfid_featnet']:.2f} final λ_rate {p['lambda_rate']:.3g}")  # fmt: skip
        for p in pairs:
            print(f"C={rate} ε {p['epsilons'][0]:g}→{p['epsilons'][1]:g}: μ {p['mu_sqrt_mse_per_null_sd']:.2e} "
                  f"√MSE per null s.d., implied λ {p['implied_lambda']:.3g}")  # fmt: skip
    OUT.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
