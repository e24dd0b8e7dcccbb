"""The Gaussian stage's DPLC under several estimates of the realism MMD, against 2·D_K.

    python benchmarks/gaussian_realism.py 4,8 draws4,unbiased,draws1 [cae_frozen]

Trains G* as the `gaussian` stage does (params.yaml's ``gaussian`` section), then at each rate
(code scalars) the CAE and one DPLC per variant from the same seeds, and evaluates each on
100,000 source vectors: MSE / (2·D_K), the largest decoded-variance error, and the MSE's split
into the mean decode's error and the conditional variance (32 decodes of 5,000 vectors).
Variants: ``draws4`` (4 draws per code, same-code pairs kept), ``unbiased`` (4 draws, pairs
left out), ``draws1`` (the batch's codes, one draw each), ``cae_warm``/``cae_frozen`` (E from
the CAE of the same rate), ``holdout8000`` (``draws1`` with the realism constraint measured on
8,000 held-out vectors instead of the stage's 2,000: the null s.d. of the MMD falls as 1/n,
so a fixed departure from N(0, I) scores four times as many null s.d.), ``batch2048``
(``draws1`` with the realism term over 2,048 source vectors a step instead of the batch's 512). Appends a JSON line per (rate, variant) to
``reports/bench/gaussian_realism.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dplc.gaussian as G  # noqa: E402
from dplc.gaussian_bounds import lloyd_distortion  # noqa: E402
from pipelines.environment import cpu_model  # noqa: E402

OUT = ROOT / "reports" / "bench" / "gaussian_realism.jsonl"
VARIANTS = {
    "draws4": {"realism_draws": 4, "realism_independent_pairs": False},
    "unbiased": {"realism_draws": 4, "realism_independent_pairs": True},
    "draws1": {"realism_draws": 1, "realism_independent_pairs": False},
    "holdout8000": {"realism_draws": 1, "realism_independent_pairs": False, "realism_holdout": 8000},
    "batch2048": {"realism_draws": 1, "realism_independent_pairs": False, "realism_batch": 2048},
    "cae_warm": {},
    "cae_frozen": {},
}


def split(codec: G.GaussianCodec, cfg: G.GaussianConfig, n: int = 5000, k: int = 32) -> tuple[float, float]:
    """(error of the mean of k decodes, mean conditional variance) on n fresh vectors."""
    x = G.Source(cfg.variances, 777).sample(n)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        outs = torch.stack([codec(x, g)[0] for _ in range(k)])
    return float((outs.mean(0) - x).pow(2).mean()), float(outs.var(0).mean())


def main() -> None:
    rates = [int(r) for r in sys.argv[1].split(",")]
    variants = sys.argv[2].split(",")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["gaussian"]
    cfg = G.GaussianConfig.from_dict({k: v for k, v in params.items() if k in G.GaussianConfig.__dataclass_fields__})
    torch.set_num_threads(2)
    torch.manual_seed(cfg.seed)
    gen = G.train_generator(cfg, G.Source(cfg.variances, cfg.seed))
    for c in rates:
        dk = lloyd_distortion(cfg.variances, cfg.bits(c), seed=cfg.seed + 5)
        torch.manual_seed(cfg.seed + 100 + 2 * c)
        cae, _ = G.train_codec(cfg, c, G.Source(cfg.variances, cfg.seed + 1000 + 2 * c))
        test = G.Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
        mse_cae = G.evaluate(cae, test, cfg.variances, 3)["mse"]
        for v in variants:
            vc = dataclasses.replace(cfg, **VARIANTS[v])
            base = G.GaussianCodec
            if v.startswith("cae"):
                class Warm(base):  # E starts from the CAE's (and stays there when frozen)
                    def __init__(self, *a, _from=cae, _train=v != "cae_frozen", **k) -> None:
                        super().__init__(*a, **k)
                        self.encoder.load_state_dict(_from.encoder.state_dict())
                        for p in self.encoder.parameters():
                            p.requires_grad_(_train)

                G.GaussianCodec = Warm
            torch.manual_seed(cfg.seed + 100 + 2 * c + 1)
            t0 = time.time()
            try:
                codec, info = G.train_codec(vc, c, G.Source(cfg.variances, cfg.seed + 1001 + 2 * c), gen)
            finally:
                G.GaussianCodec = base
            m = G.evaluate(codec, test, cfg.variances, 3)
            mean_decode, pv = split(codec, cfg)
            row = dict(c=c, variant=v, mse=m["mse"], over_2dk=m["mse"] / (2 * dk),
                       var_err=max(abs(e) for e in m["variance_error"]), mean_decode=mean_decode, pv=pv,
                       lam=info["lambda_rate"], mmd_sd=info["holdout_mmd_sd"], cae=mse_cae, dk=dk,
                       s=round(time.time() - t0), cpu_model=cpu_model(), torch=torch.__version__,
                       date=time.strftime("%Y-%m-%d"))  # fmt: skip
            print(json.dumps(row), flush=True)
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
