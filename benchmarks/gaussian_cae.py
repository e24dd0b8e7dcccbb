"""Why the Gaussian stage's CAE sits above D_K at 2–8 bits: steps, width, or the encoder.

    python benchmarks/gaussian_cae.py [--rates 2,4,8] [--steps 2500,10000,40000] [--hidden 128,512]
                                      [-S "nearest_all=[cae]" -S cae_lr=0.01 ...]

Trains the stage's CAE (params.yaml's ``gaussian`` section; ``steps`` and ``hidden`` varied,
any other setting changed with ``-S key=value``, the value read as YAML; same seeds as the stage) at each rate and reports, on 100,000 fresh source vectors,
MSE/D_K for three encoders of the same trained decoder D:

- ``learned``: the CAE as trained, x → Q(E(x)) (what the stage reports);
- ``nearest``: x → the code b in {0, …, L−1}^C whose decode D(b) is nearest to x, by search over
  all L^C codes (the Lloyd nearest-neighbour condition: the best encoder for this D);
- ``lloyd``: ``nearest`` followed by re-centring each codeword on its cell's mean over 100,000
  training vectors, iterated (Lloyd's algorithm started from D's codebook).

With them the codes E uses and, per code scalar, how often its sign agrees with its best
affine fit (1.0: hyperplane cells). If ``nearest`` reaches D_K where ``learned`` does not, the
gap is the learned encoder (its cells are preimages of the quantizer's cells under an MLP
trained through a straight-through gradient), not the decoder's codebook; if it does not, the
codebook is. Appends one JSON line per (rate, steps, hidden) to
``reports/bench/gaussian_cae.jsonl`` with the machine it ran on.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dplc.gaussian as G  # noqa: E402
from dplc.gaussian_bounds import lloyd, lloyd_distortion, nearest_mse  # noqa: E402
from pipelines.environment import cpu_model  # noqa: E402

OUT = ROOT / "reports" / "bench" / "gaussian_cae.jsonl"


def codebook(cae: G.GaussianCodec, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every code the quantizer can emit (L^C rows of quantized values) and D's decode of each."""
    codes = G.all_codes(cae.c, levels)
    with torch.no_grad():
        return codes, cae.decoder(codes)


def bit_linear_agreement(cae: G.GaussianCodec, x: torch.Tensor) -> list[float]:
    """For each of E's code scalars, the fraction of ``x`` on which its sign agrees with its
    best affine least-squares fit's: 1.0 everywhere means E's cells are cut by hyperplanes."""
    with torch.no_grad():
        signs = torch.sign(cae.encode(x))
    xa = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)
    fit = torch.linalg.lstsq(xa, signs).solution
    return [round(float(a), 4) for a in (torch.sign(xa @ fit) == signs).float().mean(0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="2,4,8", help="code scalars C, comma-separated")
    ap.add_argument("--steps", default="2500,10000,40000")
    ap.add_argument("--hidden", default="128")
    ap.add_argument("-S", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    sets = {k: yaml.safe_load(v) for k, v in (a.split("=", 1) for a in args.sets)}
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["gaussian"] | sets
    base = G.GaussianConfig.from_dict({k: v for k, v in params.items() if k in G.GaussianConfig.__dataclass_fields__})
    torch.set_num_threads(base.threads)
    test = G.Source(base.variances, base.seed + 10_000).sample(base.test_size)
    train = G.Source(base.variances, base.seed + 20_000).sample(base.test_size)
    for c in (int(r) for r in args.rates.split(",")):
        dk = lloyd_distortion(base.variances, base.bits(c), seed=base.seed + 5)
        for steps, hidden in itertools.product(
            (int(s) for s in args.steps.split(",")), (int(h) for h in args.hidden.split(","))
        ):
            cfg = dataclasses.replace(base, steps=steps, hidden=hidden)
            torch.manual_seed(cfg.seed + 100 + 2 * c)  # the stage's seeds (dplc.gaussian_study)
            t0 = time.time()
            cae, _ = G.train_codec(cfg, c, G.Source(cfg.variances, cfg.seed + 1000 + 2 * c))
            seconds = time.time() - t0
            learned = G.evaluate(cae, test, cfg.variances, 3)["mse"]
            _, decodes = codebook(cae, cfg.levels)
            nearest = nearest_mse(test, decodes)
            lloyd_mse = nearest_mse(test, lloyd(train, decodes))
            used = int(torch.unique(cae.encode(test).detach(), dim=0).shape[0])
            row = {
                "bits": cfg.bits(c), "code_scalars": c, "steps": steps, "hidden": hidden, "settings": sets,
                "effective": {k: getattr(cfg, k) for k in ("lr", "cae_lr", "nearest_weight", "nearest_all")},
                "d_k": dk,
                "learned_over_dk": learned / dk, "nearest_over_dk": nearest / dk,
                "lloyd_over_dk": lloyd_mse / dk, "codes_used": used, "codes": cfg.levels**c,
                "bit_linear_agreement": bit_linear_agreement(cae, test),
                "train_seconds": round(seconds, 1), "cpu_model": cpu_model(), "torch": torch.__version__,
                "date": time.strftime("%Y-%m-%d"),
            }
            print(json.dumps(row), flush=True)
            with OUT.open("a") as f:
                f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
