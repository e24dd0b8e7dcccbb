"""Explicit shared-randomness codes with exact realism against the private-noise bound 2·D_K.

    python benchmarks/gaussian_dither.py [--vectors 1000000]

``dplc.cdf_dither`` quantizes each Gaussian component in its CDF domain with subtractive dither
and decodes it reflected; ``dplc.polar_dither`` codes pairs of components in polar form, the
angle dithered on the circle with a number of cells per radius ring. The decodes of both are
exactly N(0, σ²) by construction, not by a measured check. Two tables:

- **scalar**, X ~ N(0, 1) with L symbols (one fixed-length message of log₂ L bits): the code's
  MSE (quadrature) against D_L and 2·D_L of the best L-cell quantizer (Lloyd–Max, exact
  Gaussian integrals), and D(R, 0) at R = log₂ L (the asymptotic limit with shared randomness);
- **the Gaussian stage's source** (params.yaml's ``gaussian``: variances and rates): symbols per
  component by ``cdf_dither.allocate``, MSE per dimension on ``--vectors`` source vectors, the
  same with an independent dither at the decoder, the largest relative error of a decoded
  component's variance and per-component quantile W₂² beside that of two source samples (the
  realism readings the stage reports), against the stage's own D_K (Lloyd on 4-d vectors, the
  stage's seed) and the best product of scalar private-noise codes with the same message size
  (Σ σᵢ²·2·D_{Lᵢ}); with the stage's learned codecs from ``reports/bench/results.json``; and
  the same readings of ``polar_dither.design``'s code (``polar_*`` keys).

Writes ``reports/bench/gaussian_dither.json`` with the machine and package versions.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from functools import cache
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import cdf_dither, polar_dither  # noqa: E402
from dplc.gaussian import GaussianConfig, Source, variance_errors  # noqa: E402
from dplc.gaussian_bounds import _realism_component, lloyd_distortion, quantile_w2_squared  # noqa: E402
from pipelines import environment  # noqa: E402

OUT = ROOT / "reports" / "bench" / "gaussian_dither.json"
SCALAR_LEVELS = (2, 3, 4, 5, 6, 7, 8, 12, 16, 32)


@cache
def lloyd_max(levels: int, iters: int = 2000) -> float:
    """D_L of N(0, 1): the MSE of the best L-level scalar quantizer, by Lloyd–Max iterations
    (Max 1960) with exact Gaussian cell means E[X | a < X ≤ b] = (φ(a) − φ(b)) / (Φ(b) − Φ(a))."""
    if levels == 1:
        return 1.0
    c = torch.special.ndtri((torch.arange(levels, dtype=torch.float64) + 0.5) / levels)
    inf = torch.tensor([math.inf], dtype=torch.float64)

    def cells(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = torch.cat([-inf, (c[1:] + c[:-1]) / 2, inf])
        pdf = torch.exp(-0.5 * b**2) / math.sqrt(2 * math.pi)
        pdf = torch.where(torch.isinf(b), torch.zeros_like(b), pdf)
        return pdf[:-1] - pdf[1:], torch.special.ndtr(b[1:]) - torch.special.ndtr(b[:-1])

    for _ in range(iters):
        num, mass = cells(c)
        c = num / mass
    num, mass = cells(c)
    return float(1.0 - (num**2 / mass).sum())


def scalar_table() -> list[dict]:
    """The scalar code against its one-shot bounds, per number of symbols."""
    rows = []
    for lv in SCALAR_LEVELS:
        mse, d_l = cdf_dither.scalar_mse(lv), lloyd_max(lv)
        rows.append({"symbols": lv, "bits": math.log2(lv), "mse": mse, "d_l": d_l,
                     "mse_over_2dl": mse / (2 * d_l), "mse_over_dl": mse / d_l,
                     "d_r0": _realism_component(1.0, math.log2(lv))})  # fmt: skip
    return rows


def product_private(variances: tuple[float, ...], bits: float) -> tuple[float, tuple[int, ...]]:
    """The best product of scalar private-noise codes with Π Lᵢ ≤ 2^bits: min Σ σᵢ²·2·D_{Lᵢ} / d."""
    order = sorted(variances, reverse=True)
    budget = int(math.floor(2.0**bits + 1e-9))
    best = min(cdf_dither._tuples(len(order), budget, budget),
               key=lambda t: sum(v * 2 * lloyd_max(lv) for v, lv in zip(order, t, strict=True)))  # fmt: skip
    return sum(v * 2 * lloyd_max(lv) for v, lv in zip(order, best, strict=True)) / len(order), best


def polar_row(x: torch.Tensor, reference: torch.Tensor, v: tuple[float, ...], bits: float, seed: int,
              mse_over: float) -> dict:  # fmt: skip
    """``polar_dither``'s designed code at ``bits`` on the vectors ``x``: its layout, MSE (over
    ``mse_over``), with an independent dither at the decoder, and the realism readings."""
    layout = polar_dither.design(v, bits)
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(x.shape[0], 2 * len(layout), generator=gen, dtype=torch.float64)
    other = torch.rand(x.shape[0], 2 * len(layout), generator=gen, dtype=torch.float64)
    m = polar_dither.encode(x, v, layout, u)
    x_hat, wrong = polar_dither.decode(m, v, layout, u), polar_dither.decode(m, v, layout, other)
    mse = float((x_hat - x).pow(2).mean())
    return {"polar_layout": [repr(g) for g in layout], "polar_messages": polar_dither.messages(layout),
            "polar_mse": mse, "polar_mse_over_2dk": mse / mse_over,
            "polar_mse_wrong_dither": float((wrong - x).pow(2).mean()),
            "polar_variance_error_max": max(abs(e) for e in variance_errors(x_hat.float(), v)),
            "polar_variance_error_max_wrong_dither": max(abs(e) for e in variance_errors(wrong.float(), v)),
            "polar_quantile_w2": quantile_w2_squared(x_hat, reference)}  # fmt: skip


def source_table(cfg: GaussianConfig, n: int, learned: dict) -> list[dict]:
    """The code on the stage's source at each of its rates, against the stage's bounds."""
    v = cfg.variances
    x = Source(v, cfg.seed + 11).sample(n).double()
    reference = Source(v, cfg.seed + 12).sample(n).double()
    gen = torch.Generator().manual_seed(cfg.seed + 13)
    u, other = torch.rand(n, len(v), generator=gen, dtype=torch.float64), torch.rand(n, len(v), generator=gen, dtype=torch.float64)
    rows = []
    for i, c in enumerate(cfg.rates):
        bits = cfg.bits(c)
        levels = cdf_dither.allocate(v, bits)
        j = cdf_dither.encode(x, v, levels, u)
        x_hat, wrong = cdf_dither.decode(j, v, levels, u), cdf_dither.decode(j, v, levels, other)
        d_k = lloyd_distortion(v, bits, seed=cfg.seed + 5)
        prod, prod_levels = product_private(v, bits)
        mse = float((x_hat - x).pow(2).mean())
        row = {"bits": bits, "symbols": list(levels), "mse": mse,
               "mse_quadrature": sum(s * cdf_dither.scalar_mse(lv) for s, lv in zip(v, levels, strict=True)) / len(v),
               "mse_wrong_dither": float((wrong - x).pow(2).mean()),
               "variance_error_max": max(abs(e) for e in variance_errors(x_hat.float(), v)),
               "variance_error_max_wrong_dither": max(abs(e) for e in variance_errors(wrong.float(), v)),
               "quantile_w2": quantile_w2_squared(x_hat, reference), "quantile_w2_null": quantile_w2_squared(x, reference),
               "d_k": d_k, "mse_over_2dk": mse / (2 * d_k),
               "product_private_mse": prod, "product_private_symbols": list(prod_levels),
               "product_private_over_2dk": prod / (2 * d_k), "mse_over_product_private": mse / prod}  # fmt: skip
        row |= polar_row(x, reference, v, bits, cfg.seed + 14, mse_over=2 * d_k)
        for name, key in (("dplc", "gaussian_dplc_over_2dk"), ("dplc_shared", "gaussian_shared_over_2dk")):
            if learned.get("gaussian_bits") == list(map(float, cfg.rates)) and key in learned:
                row[f"learned_{name}_over_2dk"] = learned[key][i]
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vectors", type=int, default=1_000_000, help="source vectors per rate")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = GaussianConfig.from_dict(yaml.safe_load((ROOT / "params.yaml").read_text())["gaussian"])
    results = ROOT / "reports" / "bench" / "results.json"
    learned = json.loads(results.read_text()) if results.exists() else {}
    t0 = time.time()
    out = {"scalar": scalar_table(), "source": source_table(cfg, args.vectors, learned),
           "variances": list(cfg.variances), "vectors": args.vectors, "seconds": round(time.time() - t0, 1),
           "environment": environment.describe()}  # fmt: skip
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print("symbols  MSE/(2·D_L)  MSE/D_L   D(R,0)/D_L")
    for r in out["scalar"]:
        print(f"{r['symbols']:7d}  {r['mse_over_2dl']:11.3f}  {r['mse_over_dl']:7.3f}  {r['d_r0'] / r['d_l']:9.3f}")
    print("bits  symbols        MSE/(2·D_K)  product private/(2·D_K)  learned dplc / shared  var err  wrong-dither MSE ×")
    for r in out["source"]:
        learned_cols = f"{r.get('learned_dplc_over_2dk', math.nan):.3f} / {r.get('learned_dplc_shared_over_2dk', math.nan):.3f}"
        print(f"{r['bits']:4.0f}  {r['symbols']!s:13}  {r['mse_over_2dk']:11.3f}  {r['product_private_over_2dk']:23.3f}  "
              f"{learned_cols:21}  {r['variance_error_max']:.4f}  {r['mse_wrong_dither'] / r['mse']:.2f}")  # fmt: skip
    print("bits  polar MSE/(2·D_K)  var err  wrong-dither MSE ×  layout")
    for r in out["source"]:
        print(f"{r['bits']:4.0f}  {r['polar_mse_over_2dk']:17.3f}  {r['polar_variance_error_max']:.4f}  "
              f"{r['polar_mse_wrong_dither'] / r['polar_mse']:18.2f}  {' '.join(r['polar_layout'])}")  # fmt: skip
    print(f"wrote {OUT.relative_to(ROOT)} ({out['seconds']} s)")


if __name__ == "__main__":
    main()
