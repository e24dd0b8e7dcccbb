"""The Gaussian study: G*, then every codec at every rate, against the closed-form limits.

:func:`run` trains the generator and the codecs of :mod:`dplc.gaussian` on the source
X ~ N(0, diag(σ²)) (each codec from its own seeds, in worker processes when asked) and reports,
per rate, their distortion and realism beside D(R), 2·D(R), D(R, 0) and the one-shot bounds
D_K and 2·D_K of :mod:`dplc.gaussian_bounds`.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor

from dplc.gaussian import (
    GaussianConfig,
    Source,
    evaluate,
    mlp,
    train_codec,
    train_generator,
    variance_errors,
)
from dplc.gaussian_bounds import (
    gaussian_w2_squared,
    lloyd_distortion,
    realism_common_randomness,
    realism_private_noise,
    water_filling,
)


def _codec_job(job: tuple[GaussianConfig, int, str, dict[str, Tensor]]) -> dict[str, Any]:
    """Train and evaluate one codec (``cae``, ``dplc`` or ``dplc_shared`` at C = c) from its own
    seeds, so the result does not depend on which process runs it or in what order. The two
    DPLCs share their seeds (initial weights, source and noise draws): they differ only in
    whether the encoder sees the noise."""
    cfg, c, name, g_state = job
    torch.set_num_threads(max(1, cfg.threads // cfg.workers))
    offset = 2 * c + (name != "cae")
    torch.manual_seed(cfg.seed + 100 + offset)  # the codec's initial weights
    source = Source(cfg.variances, cfg.seed + 1_000 + offset)
    generator = None
    if name != "cae":
        generator = mlp(cfg.dim, cfg.dim, cfg.hidden)
        generator.load_state_dict(g_state)
        generator.eval()
    shared = cfg.shared if name == "dplc_shared" else None
    codec, info = train_codec(cfg, c, source, generator, shared)
    test = Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
    reference = Source(cfg.variances, cfg.seed + 20_000).sample(cfg.test_size)
    return evaluate(codec, test, cfg.variances, cfg.seed + 3, reference) | info


def _cost(job: tuple[GaussianConfig, int, str, dict[str, Tensor]]) -> int:
    """A job's rough cost, to start the longest first: steps × the width of the network that
    sets it (B's for DPLC, the MLPs' for the CAE)."""
    cfg, c, name, _ = job
    r = cfg.at_rate(c)
    width = r.hidden if name == "cae" else max(r.hidden, r.decoder_hidden)
    return r.steps * width * width


def _run_jobs(jobs: list, workers: int, t0: float, log: Any) -> list[dict[str, Any]]:
    """Train every (config, C, codec) job, in ``workers`` spawned processes when > 1, the jobs
    with the highest :func:`_cost` first (the others fill in beside them); one line per finished codec.
    Returns the results in the order of ``jobs``."""
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i]))  # stable
    done: list[dict[str, Any] | None] = [None] * len(jobs)

    def collect(results: Any) -> None:  # results come in the order submitted
        for n, (i, m) in enumerate(zip(order, results, strict=False), 1):
            done[i] = m
            _, c, name, _ = jobs[i]
            log(f"gaussian: {name} C={c} trained ({n}/{len(jobs)}, {time.perf_counter() - t0:.0f} s)")

    ordered = [jobs[i] for i in order]
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            collect(pool.map(_codec_job, ordered))
    else:
        collect(_codec_job(job) for job in ordered)
    return [m for m in done if m is not None]


def run(cfg: GaussianConfig, log: Any = print) -> dict[str, Any]:
    """Train G*, then CAE and DPLC at every rate; a JSON-able dict of, per rate (aligned with
    ``bits``): both codecs' MSE and ratio, W₂²/σ² of the decodes (per dimension over the mean
    variance), D(R), 2·D(R), D(R, 0), Lloyd's D_K, DPLC/(2·D_K), CAE/D_K, per-component variance
    errors and quantile W₂² (beside two exact samples'), and DPLC's final λ_rate; and G*'s own
    W₂²/σ² and per-component variance errors on exact N(0, I) latents, the part of a decode's
    error that no encoder or B can remove."""
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    t0 = time.perf_counter()
    source = Source(cfg.variances, cfg.seed)
    generator = train_generator(cfg, source)
    with torch.no_grad():
        g_samples = generator(torch.randn(cfg.test_size, cfg.dim, generator=torch.Generator().manual_seed(7)))
    mean_var = sum(cfg.variances) / cfg.dim
    out: dict[str, Any] = {
        "config": asdict(cfg) | {"variances": list(cfg.variances), "rates": list(cfg.rates)},
        "generator_w2_over_sigma2": gaussian_w2_squared(g_samples, cfg.variances) / cfg.dim / mean_var,
        "generator_variance_error": variance_errors(g_samples, cfg.variances),
        "bits": [cfg.bits(c) for c in cfg.rates],
        "code_scalars": list(cfg.rates),
        "d_opt": [water_filling(cfg.variances, cfg.bits(c)) for c in cfg.rates],
        "d_private": [realism_private_noise(cfg.variances, cfg.bits(c)) for c in cfg.rates],
        "d_common": [realism_common_randomness(cfg.variances, cfg.bits(c)) for c in cfg.rates],
        "d_k": [lloyd_distortion(cfg.variances, cfg.bits(c), seed=cfg.seed + 5) for c in cfg.rates],
    }
    log(f"gaussian: G* W2²/σ² = {out['generator_w2_over_sigma2']:.4f}, variance errors "
        + ", ".join(f"{e:+.3f}" for e in out["generator_variance_error"]))
    keys = ("mse", "w2", "var", "variance_error", "quantile_w2", "quantile_w2_null", "lambda_rate", "holdout_mmd_sd", "holdout_moment_sd",
            "mse_wrong_noise", "variance_error_wrong_noise")  # fmt: skip
    names = cfg.codecs
    rows: dict[str, list] = {f"{k}_{n}": [] for k in keys for n in names}
    jobs = [(cfg, c, name, generator.state_dict()) for c in cfg.rates for name in names]
    done = _run_jobs(jobs, cfg.workers, t0, log)
    torch.set_num_threads(cfg.threads)
    for i, c in enumerate(cfg.rates):
        for j, name in enumerate(names):
            m = done[len(names) * i + j]
            m = m | {"w2": m["w2_over_sigma2"], "var": m["decode_variance"]}
            for k in keys:
                rows[f"{k}_{name}"].append(m.get(k))
        log(f"gaussian C={c} ({out['bits'][i]:g} bits): " + ", ".join(
            f"{n} MSE {rows[f'mse_{n}'][-1]:.4f} (/{'' if n == 'cae' else '2·'}D_K "
            f"{rows[f'mse_{n}'][-1] / ((1 if n == 'cae' else 2) * out['d_k'][i]):.3f})" for n in names))  # fmt: skip
    out.update(rows)
    out |= summarize(rows, out["d_k"], names)
    out["seconds"] = time.perf_counter() - t0
    return out


def summarize(rows: dict[str, list], d_k: list[float], names: tuple[str, ...]) -> dict[str, Any]:
    """The headline figures of :func:`run`'s per-rate rows: each codec's MSE over its one-shot
    bound (CAE over D_K; DPLC and shared DPLC over 2·D_K, the private-noise limit at perfect
    realism), the largest decode variance error, the largest W₂²/σ² and MSE_dplc / MSE_cae."""
    out: dict[str, Any] = {}
    over = lambda n, k: [m / (k * d) for m, d in zip(rows[f"mse_{n}"], d_k, strict=True)]  # noqa: E731
    if "cae" in names:
        out["gaussian_cae_over_dk"] = over("cae", 1)
    for n, key in (("dplc", "dplc"), ("dplc_shared", "shared")):
        if n in names:
            out[f"gaussian_{key}_over_2dk"] = over(n, 2)
            out[f"gaussian_{key}_variance_error_max"] = max(abs(e) for v in rows[f"variance_error_{n}"] for e in v)
            out[f"w2_over_sigma2_max_{n}"] = max(rows[f"w2_{n}"])
    if "dplc" in names and "cae" in names:
        out["mse_ratio"] = [a / b for a, b in zip(rows["mse_dplc"], rows["mse_cae"], strict=True)]
    if "dplc" in names:
        out["gaussian_variance_error_max"] = out["gaussian_dplc_variance_error_max"]
    return out
