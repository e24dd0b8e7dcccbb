"""Where DPLC's MSE goes at a high rate: the encoder, B's capacity, or the realism term?

    python benchmarks/high_rate.py VARIANT [VARIANT ...] [--rate 64]

Trains the per-rate DPLC codec of the default profile (into the finished default G*, the tuned
settings, the train stage's seed) at ``--rate`` code channels in this process, once per
variant, and evaluates it like the evaluate stage (MSE, its split into the mean decode's
error and PV, rFID, the test latents' MMD in null s.d.). Variants:

- ``default``: the train stage's settings;
- ``cae_warm`` / ``cae_frozen``: E starts from the trained CAE of the same rate
  (``runs/train/cae/<C>``), trained on or frozen: is E's code the limit?
- ``cae_frozen_lam0``: E frozen from the CAE, λ_rate fixed at 10⁻⁶ (no realism): can B and G*
  decode that code at all?
- ``unbiased``: four draws per code with same-code pairs left out of the MMD
  (``realism_independent_pairs``);
- ``wide512``: the MMD on 512 fresh images, one draw each (``realism_images: 512``);
- ``lam0_then_default``: E and B first trained without realism (as ``cae_frozen_lam0``, E
  trained too), then trained again, from there, with the default constraint for as many steps:
  does B keep a deterministic decode and move it onto the prior when it starts from one, or
  does it spread its noise again?
- ``sliced512``: the realism term is the sliced W₂² to N(0, I)
  (:func:`dplc.losses.sliced_w2_to_normal`, 128 random directions a step) instead of the MMD,
  on 512 fresh images a step, one draw each (as ``wide512``); the dual still holds the held-out
  *MMD* at ε. Its gradient moves each latent towards its own normal quantile along every
  direction, a transport, where the MMD's kernel gradient may be met by spreading the noise.
- ``nonoise``: B gets no noise (``net.noise: false``, one draw per code): realism can then only
  be met by moving a deterministic decode onto the prior, the map whose cost the realistic
  inversion floor measures (docs/realism.md).
- ``nonoise1024_after_lam0``: as the realistic inversion floor, which reaches that map: B
  without noise, first trained without realism (E and B, as ``lam0_then_default``), then under
  the default constraint from there with the MMD on 1,024 fresh images a step
  (``realism_images: 1024``) rather than the batch's 128 codes: does a deterministic B reach
  realistic latents when it starts from the free decode and its MMD sees many images?

The method is built once with the default settings and, for a variant that changes them,
built again (so such a variant starts from the random state after one build). Appends one JSON
line per variant to ``reports/bench/high_rate.jsonl`` with the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import jsonl  # noqa: E402
from benchmarks.seeds import evaluate, save_codec  # noqa: E402
from dplc import data, losses  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.train import fit, setup  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

SLICED_PROJECTIONS = 128


def sliced_realism(self, batch, x, code, noise, latent) -> torch.Tensor:  # noqa: ANN001
    """The ``sliced512`` variant's realism term: sliced W₂² of B's latents on
    ``cfg.realism_images`` fresh images (one draw each) to N(0, I), the code detached when
    ``cfg.realism_grad == 'decoder'`` (as :meth:`dplc.rate_methods.DPLC._realism_mmd`)."""
    xs = batch(self.cfg.realism_images)
    draws = self.codec.draw_noise(xs.shape[0], device=x.device)
    with torch.set_grad_enabled(self.cfg.realism_grad != "decoder"):
        code = self.codec.code(xs, draws)
    return losses.sliced_w2_to_normal(self.codec.latent(code, draws), SLICED_PROJECTIONS)


OUT = ROOT / "reports" / "bench" / "high_rate.jsonl"
OVERRIDES = {
    "default": {},
    "cae_warm": {},
    "cae_frozen": {},
    "cae_frozen_lam0": {"mmd_epsilon": 0.0, "lambda_rate": 1e-6},
    "unbiased": {"realism_independent_pairs": True},
    "wide512": {"realism_draws": 1, "realism_images": 512},
    "lam0_then_default": {},
    "sliced512": {"realism_draws": 1, "realism_images": 512},
    "nonoise": {"realism_draws": 1},
    "nonoise1024_after_lam0": {"realism_draws": 1, "realism_images": 1024},
}
"""Each variant's MethodConfig changes."""
NET_OVERRIDES = {"nonoise": {"noise": False}, "nonoise1024_after_lam0": {"noise": False}}
"""Each variant's NetConfig changes."""
WARM_WITHOUT_REALISM = {"lam0_then_default": {}, "nonoise1024_after_lam0": {"realism_images": 0, "realism_draws": 1}}
"""Variants whose E and B are first trained without realism for as many steps (with these
MethodConfig changes in that phase: no MMD on extra images while λ_rate is 10⁻⁶)."""


def run(variant: str, rate: int, params: dict, images: torch.Tensor, test, work: Path) -> dict:
    """Train and evaluate one variant; its figures."""
    cfg = P.train_config(params, "dplc", rate, generator="wpp")
    cfg = dataclasses.replace(cfg, loop=dataclasses.replace(cfg.loop, label=f"{variant} C={rate}"))
    generator = Codec.load(L.generator_codec("wpp")).generator
    trained, batches = setup(cfg, images, generator)
    if OVERRIDES[variant] or variant in NET_OVERRIDES:
        cfg = dataclasses.replace(cfg, method=dataclasses.replace(cfg.method, **OVERRIDES[variant]),
                                  net=dataclasses.replace(cfg.net, **NET_OVERRIDES.get(variant, {})))  # fmt: skip
        trained, batches = setup(cfg, images, generator)
    if variant.startswith("sliced"):
        trained._realism_mmd = types.MethodType(sliced_realism, trained)
    if variant.startswith("cae"):
        trained.codec.encoder.load_state_dict(Codec.load(L.codec_dir("cae", rate)).encoder.state_dict())
        if variant.startswith("cae_frozen"):
            for p in trained.codec.encoder.parameters():
                p.requires_grad_(False)
    t0 = time.perf_counter()
    if variant in WARM_WITHOUT_REALISM:  # phase 1: no realism; phase 2 (below): the variant's constraint
        free = dataclasses.replace(cfg, method=dataclasses.replace(
            cfg.method, **OVERRIDES["cae_frozen_lam0"], **WARM_WITHOUT_REALISM[variant]))  # fmt: skip
        warm, warm_batches = setup(free, images, generator)
        fit(free, warm, warm_batches)
        trained.codec.load_state_dict(warm.codec.state_dict())
    fit(cfg, trained, batches)
    seconds = time.perf_counter() - t0
    m = evaluate(save_codec(trained, images, work / f"{variant}-c{rate}" / "codec"), test, params)
    keep = {k: m.get(k) for k in ("mse", "rfid_featnet", "pv", "mse_mean_decode", "latent_mmd_sd")}
    return keep | {"variant": variant, "rate": rate, "steps": cfg.loop.steps, "lambda_rate": trained.dual.lam,
                   "train_s": round(seconds, 1), "seed": cfg.loop.seed}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", nargs="+", choices=list(OVERRIDES))
    ap.add_argument("--rate", type=int, default=64, help="code channels C")
    args = ap.parse_args()
    params = P.load()
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    images = data.to_tensor(data.read_split(L.prepared_dir(), "train").images, int(params["data"]["image_size"]))
    test = data.read_split(L.prepared_dir(), "test", limit=10000).images
    for variant in args.variants:
        jsonl.append(OUT, run(variant, args.rate, params, images, test, L.RUNS / "high_rate"))


if __name__ == "__main__":
    main()
