"""How the held-out realism check reads latents that pass through a final BatchNorm, as B's do.

    python benchmarks/check_bias.py [--draws 8]

B (:class:`dplc.nets.StochasticMap`) ends in ``BatchNorm1d(latent_dim)``. Here the latents
before that layer are exact N(0, I) draws (``latent_dim`` and ``realism_holdout`` of the default
profile's dplc), and the layer's affine weight is 1 (exact), 0.98 or 0.95 (a 2% or 5% shrink).
Each is read with :func:`dplc.realism.latent_mmd_sd`, in null standard deviations, with the layer's
statistics taken three ways: from the held-out sample itself (training mode: the check before
``MethodConfig.check_bn_batches``), and from batches of 64 other draws, 2,048 to 32,768 in all
(eval mode after :func:`dplc.precise_bn.recalibrate`: the check now, with as many as the final
recalibration by default). Mean and s.d. over ``--draws`` readings; writes
``reports/bench/check_bias.json`` with the machine and package versions. Findings:
docs/realism.md, "The held-out check read with its own statistics".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import realism  # noqa: E402
from dplc.precise_bn import recalibrate  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "check_bias.json"
BATCH = 64
CALIBRATION_IMAGES = (2_048, 8_192, 12_800, 32_768)
GAMMAS = (1.0, 0.98, 0.95)
"""BatchNorm1d's affine weight: exact N(0, I) latents, shrunk by 2% and by 5%."""


@torch.no_grad()
def reading(dim: int, n: int, gamma: float, calibration: int, seed: int,
            null: realism.NullSpread) -> float:  # fmt: skip
    """One reading of N(0, I) draws through BatchNorm1d(weight ``gamma``) whose statistics come
    from the sample itself (``calibration`` = 0) or from that many other draws."""
    gen = torch.Generator().manual_seed(seed)
    norm = torch.nn.BatchNorm1d(dim)
    norm.weight.fill_(gamma)
    z = torch.randn(n, dim, generator=gen)
    if calibration:
        recalibrate(norm, lambda: norm(torch.randn(BATCH, dim, generator=gen)), calibration // BATCH)
    else:
        norm.train()
    return realism.latent_mmd_sd(norm(z), null, seed=seed + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    params = P.load()
    cfg = P.train_config(params, "dplc", 16)
    dim, n = cfg.net.latent_dim, cfg.method.realism_holdout
    null = realism.mmd_null(n, dim, seed=0)
    out: dict = {"latent_dim": dim, "held_out": n, "draws": args.draws, "batch": BATCH, "rows": []}
    for gamma in GAMMAS:
        for calibration in (0, *CALIBRATION_IMAGES):
            values = [reading(dim, n, gamma, calibration, s, null) for s in range(args.draws)]
            row = {"gamma": gamma, "calibration_images": calibration or None,
                   "mean": statistics.fmean(values), "sd": statistics.stdev(values), "values": values}  # fmt: skip
            out["rows"].append(row)
            print(gamma, calibration or "own", round(row["mean"], 2), round(row["sd"], 2), flush=True)
    out["environment"] = environment.describe()
    OUT.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
