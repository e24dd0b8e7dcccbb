"""Does the shared codec lose to DPLC on the Gaussian source at 8 bits for want of a start?
``dplc_shared`` trained on from the ``gaussian`` stage's private DPLC of the same rate.

    python benchmarks/gaussian_warm.py [--rate 8] [--steps 2500] [--lr-scale 0.1] [--ramp] [--control]

The ``gaussian`` stage trains both DPLCs at every rate from the same seeds; they differ only in
whether the encoder reads the decoder's noise U (the ``encoder`` form, its weights W_U starting
at zero). Trained from those seeds (the ``scratch`` start), the shared codec ends well above
DPLC at 8 bits, and more steps made it worse (docs/realism.md, "B's width and the steps, per
rate"). This benchmark retrains the stage's G* and private DPLC at ``--rate`` exactly as the
stage does (same seeds, one thread: its MSE must equal the stage's ``runs/gaussian/results.json``
to every digit, which the row checks), then starts ``dplc_shared`` from that codec
(:func:`dplc.gaussian.load_start`: W_U = 0, so it decodes as DPLC) and trains it ``--steps``
more steps with the stage's objective: by default as a continuation (learning rate times
``--lr-scale``, λ_rate starting at the private codec's final value, no ramp:
:meth:`dplc.gaussian.GaussianConfig.continuation`), which with the defaults is the stage's
``private`` start (``gaussian.starts``); ``--ramp`` uses the stage's own start instead
(λ_rate from its initial value, ramped in over the first half). ``--control`` trains the private
codec on the same way instead, so that what the shared codec gains can be told from what the
extra steps give. The private codec's state is kept under ``runs/gaussian_warm/`` and reused.
Appends one JSON line to ``reports/bench/gaussian_warm.jsonl``: both codecs' MSE over 2·D_K,
decoded-variance errors, held-out latent MMD (null s.d.), λ_rate and the MSE under a wrong seed,
beside the stage's figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.jsonl import append  # noqa: E402
from dplc import gaussian as G  # noqa: E402
from dplc.gaussian_study import job_seeds  # noqa: E402

OUT = ROOT / "reports" / "bench" / "gaussian_warm.jsonl"
WORK = ROOT / "runs" / "gaussian_warm"
STAGE = ROOT / "runs" / "gaussian" / "results.json"


def stage_config() -> G.GaussianConfig:
    """The ``gaussian`` stage's config, as ``pipelines.gaussian`` builds it from params.yaml."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return G.GaussianConfig.from_dict(params["gaussian"] | {"seed": int(params["seed"])})


def stage_generator(cfg: G.GaussianConfig) -> torch.nn.Module:
    """G* as :func:`dplc.gaussian_study.run` trains it (same seeds and threads)."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    return G.train_generator(cfg, G.Source(cfg.variances, cfg.seed))


def evaluate(codec: G.GaussianCodec, cfg: G.GaussianConfig) -> dict:
    """The stage's test figures (:func:`dplc.gaussian.evaluate`, the stage's test seeds)."""
    test = G.Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
    reference = G.Source(cfg.variances, cfg.seed + 20_000).sample(cfg.test_size)
    return G.evaluate(codec, test, cfg.variances, cfg.seed + 3, reference)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=8, help="code scalars C (bits per 4-d vector)")
    ap.add_argument(
        "--steps", type=int, default=2500, help="the shared codec's steps after the start"
    )
    ap.add_argument(
        "--lr-scale", type=float, default=0.1, help="the stage's learning rate times this"
    )
    ap.add_argument("--ramp", action="store_true", help="λ_rate from the stage's start, ramped in")
    ap.add_argument(
        "--control",
        action="store_true",
        help="train the private codec on the same way instead (no shared noise)",
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    cfg = stage_config()
    c = args.rate
    if cfg.shared != "encoder":
        raise SystemExit(
            f"the stage's shared form is {cfg.shared!r}; this benchmark starts the encoder form"
        )
    g_state = stage_generator(cfg).state_dict()
    state = WORK / f"private-c{c}.pt"
    torch.set_num_threads(max(1, cfg.threads // cfg.workers))  # as the stage's codec jobs
    if state.is_file():
        saved = torch.load(state, weights_only=True)
        private = G.GaussianCodec(cfg.at_rate(c), c, job_seeds(cfg, c, "dplc", g_state)[1])
        private.load_state_dict(saved["codec"])
        info = saved["info"]
    else:
        source, generator = job_seeds(cfg, c, "dplc", g_state)
        private, info = G.train_codec(cfg, c, source, generator)
        state.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"codec": private.state_dict(), "info": info}, state)
    private.eval()
    m_private = evaluate(private, cfg) | info
    stage = json.loads(STAGE.read_text())
    i = stage["code_scalars"].index(c)
    d_k = stage["d_k"][i]
    t1 = time.perf_counter()
    warm = dataclasses.replace(cfg, continue_steps=args.steps, continue_lr_scale=args.lr_scale)
    warm = warm.continuation(c, float(info["lambda_rate"]))
    if args.ramp:  # the stage's own start of the dual instead
        warm = dataclasses.replace(warm, rate_warmup=cfg.rate_warmup, lambda_rate=cfg.lambda_rate)
    source, generator = job_seeds(cfg, c, "dplc_shared", g_state)
    shared, shared_info = G.train_codec(
        warm, c, source, generator, None if args.control else cfg.shared, start=private
    )
    m_shared = evaluate(shared, cfg) | shared_info

    def row(m: dict) -> dict:
        return {"mse": m["mse"], "over_2dk": m["mse"] / (2 * d_k),
                "variance_error_max": max(abs(e) for e in m["variance_error"]),
                "holdout_mmd_sd": m.get("holdout_mmd_sd"), "holdout_moment_sd": m.get("holdout_moment_sd"),
                "lambda_rate": m.get("lambda_rate"), "mse_wrong_noise": m.get("mse_wrong_noise")}  # fmt: skip

    append(OUT, {
        "rate": c, "bits": cfg.bits(c), "steps": args.steps, "lr_scale": args.lr_scale, "ramp": args.ramp, "control": args.control,
        "private": row(m_private) | {"equals_stage": m_private["mse"] == stage["mse_dplc"][i]},
        "shared_warm": row(m_shared) | {"train_s": round(time.perf_counter() - t1, 1)},
        "stage_shared": {"mse": stage["mse_dplc_shared"][i], "over_2dk": stage["mse_dplc_shared"][i] / (2 * d_k),
                         "holdout_mmd_sd": stage["holdout_mmd_sd_dplc_shared"][i]},
        "seconds": round(time.perf_counter() - t0, 1),
    })  # fmt: skip


if __name__ == "__main__":
    main()
