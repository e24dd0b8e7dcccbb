"""Where the Gaussian stage's codecs lose to their bounds at 4 and 8 bits: the learned encoder
or the decoder. Codes chosen by search against the decoder, beside the stage's learned ones.

    python benchmarks/gaussian_search.py 4,8 cae_learned,cae_search,dplc_learned,dplc_joint,dplc_search

Trains G* as the `gaussian` stage does (params.yaml's ``gaussian`` section), then at each rate
(code scalars C, one bit each) one codec per variant from the same seeds, and evaluates each on
100,000 source vectors against its bound (CAE: D_K; DPLC with private noise: 2·D_K; D_K from
Lloyd's K = 2^C-cell quantizer). Variants:

- ``cae_learned``, ``dplc_learned``: the stage's codecs (E an MLP trained through the
  straight-through quantizer; DPLC's realism term the MMD of B's latents against N(0, I)).
- ``cae_search``: no encoder network; the code is Lloyd's nearest-neighbour condition for the
  current decoder, argmin_j |x − D(j)|² over all 2^C codes; D trained for MSE on those codes.
- ``dplc_search``: the code minimises the *expected* error of the stochastic decoder,
  argmin_j |x − m_j|² + tr S_j, with m_j and S_j the mean and covariance of G*(B(j, U)) over
  eight draws of U per code (recomputed every step); B trained for MSE plus λ times the realism
  term of ``dplc_joint``, λ by the stage's dual ascent on the held-out latent MMD.
- ``dplc_joint``: the stage's learned encoder, with a realism term that adds to the latent MMD
  the MMD between (code, decode) and (code, source) pairs (the code scaled by 3, detached): it
  asks B(j, ·) to sample X given J = j, not only the marginal, which is what the private-noise
  bound 2·D_K assumes.

Appends a JSON line per (rate, variant) to ``reports/bench/gaussian_search.jsonl``: MSE over the
bound, the largest relative error of a decoded component's variance, the mean decode's error and
the conditional variance (16 draws on 5,000 vectors), λ, the held-out latent MMD in null s.d.,
and the codes in use.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dplc.gaussian as G  # noqa: E402
from benchmarks.jsonl import append  # noqa: E402
from dplc.gaussian_bounds import lloyd_distortion  # noqa: E402
from dplc.losses import mmd_imq  # noqa: E402
from dplc.realism import DualLambda, latent_mmd_sd, mmd_null  # noqa: E402

OUT = ROOT / "reports" / "bench" / "gaussian_search.jsonl"
VARIANTS = ("cae_learned", "cae_search", "dplc_learned", "dplc_joint", "dplc_search")
DRAWS = 8
"""Noise draws per code in the search's estimate of a code's expected error."""
CODE_SCALE = 3.0
"""The code's weight in the joint MMD: distinct codes (±0.5 per scalar) sit 3 apart, so the
kernel compares decodes mostly with sources of the same code."""


@torch.no_grad()
def search(codec: G.GaussianCodec, x: torch.Tensor, book: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Each vector's code: least squared error (CAE) or least expected squared error over the
    decoder's noise (DPLC), Lloyd's nearest-neighbour condition for the current decoder."""
    if codec.generator is None:
        means, spread = codec.decoder(book), torch.zeros(book.shape[0])
    else:
        v = book.repeat(DRAWS, 1)
        dec = codec.generator(codec.decode_latent(v, codec.draw(v.shape[0], gen))).view(DRAWS, book.shape[0], -1)
        means, spread = dec.mean(0), dec.var(0).sum(1)
    return book[(torch.cdist(x, means).pow(2) + spread).argmin(1)]


def joint_term(codec: G.GaussianCodec, v: torch.Tensor, s: torch.Tensor, x: torch.Tensor,
               prior: torch.Generator) -> torch.Tensor:  # fmt: skip
    """Latent MMD of B(v, s) against N(0, I) plus the MMD of (code, decode) against (code,
    source); the code detached, so the term trains B alone (the stage's ``realism_grad``)."""
    v = v.detach()
    z = codec.decode_latent(v, s)
    paired = mmd_imq(torch.cat([CODE_SCALE * v, codec.generator(z)], 1), torch.cat([CODE_SCALE * v, x], 1))
    return mmd_imq(z, torch.randn(z.shape, generator=prior)) + paired


def train(cfg: G.GaussianConfig, c: int, source: G.Source, generator: torch.nn.Module | None, by_search: bool):
    """A codec whose codes come from :func:`search` (``by_search``; the decoder, D or B into G*,
    trained) or from its learned E (DPLC only: E and B trained, the realism term
    :func:`joint_term`), with the stage's optimiser, warm-up and dual ascent on λ."""
    cfg = cfg.at_rate(c)
    codec = G.GaussianCodec(cfg, c, generator)
    book = G.all_codes(c, cfg.levels)
    params = [p for n, p in codec.named_parameters() if p.requires_grad and not (by_search and n.startswith("encoder"))]
    opt, sched = G._adam(params, cfg.lr, cfg.steps)
    prior = torch.Generator().manual_seed(cfg.seed + 2 + c)
    dual = DualLambda(cfg.lambda_rate, cfg.mmd_epsilon, cfg.dual_step)
    holdout = source.sample(cfg.realism_holdout)
    null = mmd_null(cfg.realism_holdout, cfg.dim, seed=cfg.seed)
    warmup, measured = cfg.rate_warmup * cfg.steps, None

    def encode(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return search(codec, x, book, gen) if by_search else codec.encode(x)

    for step in range(cfg.steps):
        x = source.sample(cfg.batch_size)
        v = encode(x, prior)
        if generator is None:
            loss = (codec.decoder(v) - x).pow(2).mean()
        else:
            s = codec.draw(x.shape[0], prior)
            ramp = min(1.0, step / max(1.0, warmup))
            loss = (generator(codec.decode_latent(v, s)) - x).pow(2).mean()
            loss = loss + ramp * dual.lam * joint_term(codec, v, s, x, prior)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if generator is not None and step >= warmup and (step + 1) % cfg.dual_every == 0:
            with torch.no_grad():
                vh = encode(holdout, prior)
                z = codec.decode_latent(vh, codec.draw(vh.shape[0], torch.Generator().manual_seed(step)))
                measured = latent_mmd_sd(z, null, seed=step + 1)
            dual.update(measured)
    codec.eval()
    return encode, codec, {"lambda_rate": dual.lam, "holdout_mmd_sd": measured}


def evaluate(encode, codec: G.GaussianCodec, cfg: G.GaussianConfig, bound: float) -> dict:
    """MSE over the bound, variance errors, the mean decode's error and the conditional variance."""
    x = G.Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
    with torch.no_grad():
        v = encode(x, torch.Generator().manual_seed(5))
        if codec.generator is None:
            x_hat, mean_decode, pv = codec.decoder(v), None, 0.0
        else:
            x_hat = codec.generator(codec.decode_latent(v, codec.draw(x.shape[0], torch.Generator().manual_seed(3))))
            xs, vs = x[:5000], v[:5000]
            outs = torch.stack([codec.generator(codec.decode_latent(vs, codec.draw(5000, torch.Generator().manual_seed(100 + k))))
                                for k in range(16)])  # fmt: skip
            mean_decode, pv = float((outs.mean(0) - xs).pow(2).mean()), float(outs.var(0).mean())
    mse = float((x_hat - x).pow(2).mean())
    errors = [float(a / s - 1.0) for a, s in zip(x_hat.var(0), cfg.variances, strict=True)]
    return {"mse": mse, "over_bound": mse / bound, "variance_error_max": max(abs(e) for e in errors),
            "mean_decode": mean_decode, "pv": pv, "codes_used": int(torch.unique(v, dim=0).shape[0])}  # fmt: skip


def main() -> None:
    rates = [int(r) for r in sys.argv[1].split(",")]
    variants = sys.argv[2].split(",") if len(sys.argv) > 2 else list(VARIANTS)
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; known: {VARIANTS}")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["gaussian"]
    cfg = G.GaussianConfig.from_dict(params)
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = G.train_generator(cfg, G.Source(cfg.variances, cfg.seed))
    for c in rates:
        dk = lloyd_distortion(cfg.variances, cfg.bits(c), seed=cfg.seed + 5)
        for name in variants:
            torch.manual_seed(cfg.seed + 100 + 2 * c)
            source = G.Source(cfg.variances, cfg.seed + 1001 + 2 * c)
            t0 = time.time()
            if name == "cae_learned":
                codec, info = G.train_codec(cfg, c, source)
                encode = lambda x, g, codec=codec: codec.encode(x)  # noqa: E731
            elif name == "dplc_learned":
                codec, info = G.train_codec(cfg, c, source, gen)
                encode = lambda x, g, codec=codec: codec.encode(x)  # noqa: E731
            else:
                g = None if name == "cae_search" else gen
                encode, codec, info = train(cfg, c, source, g, by_search=name.endswith("search"))
            seconds = round(time.time() - t0, 1)
            bound = dk if name.startswith("cae") else 2 * dk
            row = {"c": c, "bits": cfg.bits(c), "variant": name, "d_k": dk, "bound": "D_K" if name.startswith("cae") else "2·D_K"}
            row |= evaluate(encode, codec, cfg, bound)
            row |= {"lambda_rate": info.get("lambda_rate") if name.startswith("dplc") else None,
                    "holdout_mmd_sd": info.get("holdout_mmd_sd"), "steps": cfg.at_rate(c).steps, "train_seconds": seconds,
                    "date": time.strftime("%Y-%m-%d")}  # fmt: skip
            append(OUT, row)


if __name__ == "__main__":
    main()
