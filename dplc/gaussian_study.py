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
from torch import Tensor, nn

from dplc import polar_dither
from dplc.gaussian import (
    STARTS,
    GaussianCodec,
    GaussianConfig,
    Source,
    evaluate,
    mlp,
    train_autoencoder,
    train_codec,
    variance_errors,
)
from dplc.gaussian_bounds import (
    gaussian_w2_squared,
    lloyd_distortion,
    quantile_w2_squared,
    realism_common_randomness,
    realism_private_noise,
    water_filling,
)
from dplc.latent_polar import principal_axes
from dplc.realism import latent_mmd_sd, latent_moment_sd, mmd_null, moment_null

CANDIDATE_KEYS = ("mse", "val_mse", "holdout_mmd_sd", "holdout_moment_sd", "lambda_rate", "code_mmse",
                  "transport_floor")  # fmt: skip
"""What the results keep of each start a DPLC was trained from, beside the one kept."""


def job_seeds(cfg: GaussianConfig, c: int, name: str, g_state: dict[str, Tensor]) -> tuple[Source, nn.Module | None]:
    """Seed torch for codec ``name`` at C = ``c`` (its initial weights) and return its training
    source and, for a DPLC, G* rebuilt from ``g_state``. The two DPLCs share their seeds (initial
    weights, source and noise draws): they differ only in whether the encoder sees the noise."""
    offset = 2 * c + (name != "cae")
    torch.manual_seed(cfg.seed + 100 + offset)  # the codec's initial weights
    source = Source(cfg.variances, cfg.seed + 1_000 + offset)
    return source, None if name == "cae" else _frozen(cfg, g_state)


Job = tuple[GaussianConfig, int, str, str, dict[str, Tensor], dict[str, Any] | None]
"""(config, C, codec name, start, G*'s state, and the start's state: the private codec's state
and final λ_rate for a ``private`` start, the CAE's encoder state for a ``cae`` start)."""


def _jobs(cfg: GaussianConfig, c: int, g_state: dict[str, Tensor], start: str,
          base: dict[str, Any] | None = None) -> list[Job]:  # fmt: skip
    """The jobs of one start at C = ``c`` (the rate's starts, :meth:`GaussianConfig.at_rate`):
    from ``scratch`` the CAE always, the private DPLC when ``scratch`` or ``private`` is a start
    (a candidate, or the codec ``private`` continues), the shared one when ``scratch`` is, and at
    C = 0 every codec; the DPLCs continued from ``base`` (``private``); or the private DPLC on the
    CAE's encoder ``base`` (``cae``). The ``polar`` shared form is no job: it trains nothing
    (:func:`polar_figures`)."""
    trained = [n for n in cfg.codecs if not (n == "dplc_shared" and cfg.shared == "polar")]
    starts = cfg.at_rate(c).starts
    if start == "scratch":
        dplc_needed = "scratch" in starts or "private" in starts  # a candidate, or what `private` continues
        names = [n for n in trained if c == 0 or n == "cae" or ("scratch" in starts if n == "dplc_shared" else dplc_needed)]
    elif start == "cae":
        names = ["dplc"]
    else:
        names = [n for n in trained if n != "cae"]
    return [(cfg, c, name, start, g_state, base) for name in names]


def _codec_job(job: Job) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Train and evaluate one codec (``cae``, ``dplc`` or ``dplc_shared`` at C = c) from its own
    seeds, continued from the private codec ``base`` or, for a ``cae`` start, on the CAE's
    encoder ``base``, so the result does not depend on which process runs it or in what order.
    Returns its figures (test set, and ``val_mse`` on a validation sample apart from it) and the
    state a later start needs: for the private DPLC from scratch when a ``private`` start
    follows, its state and final λ_rate; for the CAE when a ``cae`` start follows, its E."""
    cfg, c, name, start, g_state, base = job
    torch.set_num_threads(max(1, cfg.threads // cfg.workers))
    private = encoder = None
    if start == "cae":
        assert base is not None
        encoder = mlp(cfg.dim, c, cfg.hidden)
        encoder.load_state_dict(base["encoder"])
    if start == "private":
        assert base is not None
        private = GaussianCodec(cfg.at_rate(c), c, _frozen(cfg, g_state))  # before the seeds below
        private.load_state_dict(base["codec"])
    source, generator = job_seeds(cfg, c, name, g_state)
    shared = cfg.shared if name == "dplc_shared" else None
    if private is None:
        codec, info = train_codec(cfg, c, source, generator, shared, encoder=encoder)
    else:
        codec, info = train_codec(cfg.continuation(c, base["lambda_rate"]), c, source, generator, shared, start=private)
    test = Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
    reference = Source(cfg.variances, cfg.seed + 20_000).sample(cfg.test_size)
    validation = Source(cfg.variances, cfg.seed + 30_000).sample(cfg.test_size)
    m = evaluate(codec, test, cfg.variances, cfg.seed + 3, reference, floor=True) | info | {"start": start}
    m["val_mse"] = evaluate(codec, validation, cfg.variances, cfg.seed + 4)["mse"]
    starts = cfg.at_rate(c).starts
    if start == "scratch" and c > 0 and name == "dplc" and "private" in starts:
        return m, {"codec": codec.state_dict(), "lambda_rate": float(info["lambda_rate"])}
    if start == "scratch" and c > 0 and name == "cae" and "cae" in starts:
        assert codec.encoder is not None
        return m, {"encoder": codec.encoder.state_dict()}
    return m, None


@torch.no_grad()
def polar_figures(cfg: GaussianConfig, c: int, encoder: nn.Module, generator: nn.Module, axes: Tensor,
                  weights: tuple[float, ...]) -> dict[str, Any]:  # fmt: skip
    """``dplc_shared`` in its ``polar`` form at C = ``c``: G*(V·ŵ) with ŵ the
    :func:`dplc.polar_dither.design` code of w = E(x)·V (V, ``weights``: G*'s principal axes and
    their s², :func:`dplc.latent_polar.principal_axes`; unit variances, since w is meant to be
    N(0, I)) and a shared dither. The figures :func:`_codec_job` gives a trained codec, on the same
    test, reference and validation samples; the held-out checks are those of the decoded latents,
    and λ_rate is None (no constraint to enforce: realism holds by construction when E(X) is
    N(0, I))."""
    bits = cfg.bits(c)
    layout = polar_dither.design(weights, bits)
    unit = (1.0,) * cfg.dim

    def latents(x: Tensor, seed: int, decoder_seed: int | None = None) -> Tensor:
        u = torch.rand(x.shape[0], 2 * len(layout), generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        v = u if decoder_seed is None else torch.rand(u.shape, generator=torch.Generator().manual_seed(decoder_seed), dtype=torch.float64)
        m = polar_dither.encode(encoder(x).double() @ axes, unit, layout, u)
        return (polar_dither.decode(m, unit, layout, v) @ axes.T).float()

    test = Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
    reference = Source(cfg.variances, cfg.seed + 20_000).sample(cfg.test_size)
    validation = Source(cfg.variances, cfg.seed + 30_000).sample(cfg.test_size)
    x_hat, wrong = generator(latents(test, cfg.seed + 3)), generator(latents(test, cfg.seed + 3, cfg.seed + 4))
    mean_var = sum(cfg.variances) / cfg.dim
    out: dict[str, Any] = {
        "mse": float((x_hat - test).pow(2).mean()),
        "w2_over_sigma2": gaussian_w2_squared(x_hat, cfg.variances) / cfg.dim / mean_var,
        "decode_variance": [float(v) for v in x_hat.var(0)],
        "variance_error": variance_errors(x_hat, cfg.variances),
        "quantile_w2": quantile_w2_squared(x_hat, reference),
        "quantile_w2_null": quantile_w2_squared(test, reference),
        "mse_wrong_noise": float((wrong - test).pow(2).mean()),
        "variance_error_wrong_noise": variance_errors(wrong, cfg.variances),
        "val_mse": float((generator(latents(validation, cfg.seed + 5)) - validation).pow(2).mean()),
        "lambda_rate": None, "layout": [repr(g) for g in layout], "start": "scratch",
    }  # fmt: skip
    holdout = latents(Source(cfg.variances, cfg.seed + 40_000).sample(cfg.realism_holdout), cfg.seed + 6)
    out["holdout_mmd_sd"] = latent_mmd_sd(holdout, mmd_null(cfg.realism_holdout, cfg.dim, seed=cfg.seed), seed=cfg.seed)
    if cfg.moment_holdout > 0:
        z = latents(Source(cfg.variances, cfg.seed + 50_000).sample(cfg.moment_holdout), cfg.seed + 7)
        out["holdout_moment_sd"] = latent_moment_sd(z, moment_null(cfg.moment_holdout, cfg.dim))
    return out


def _frozen(cfg: GaussianConfig, g_state: dict[str, Tensor]) -> nn.Module:
    """G* rebuilt from ``g_state`` (its construction draws from torch's RNG)."""
    generator = mlp(cfg.dim, cfg.dim, cfg.hidden)
    generator.load_state_dict(g_state)
    return generator.eval()


def choose(candidates: list[dict[str, Any]], epsilon: float) -> dict[str, Any]:
    """The codec kept among one DPLC's starts: the least validation MSE among those whose last
    held-out checks (latent MMD and moment gap, in null s.d.) are within ``epsilon``; the first
    start's when none is. The figures come from samples apart from the test set, so the choice
    does not read it."""

    def meets(m: dict[str, Any]) -> bool:
        return all(m.get(k) is None or m[k] <= epsilon for k in ("holdout_mmd_sd", "holdout_moment_sd"))

    passing = [m for m in candidates if meets(m)]
    return min(passing, key=lambda m: m["val_mse"]) if passing else candidates[0]


def _cost(job: Job) -> int:
    """A job's rough cost, to start the longest chain first: steps × the squared width of the
    network that sets it (B's for DPLC, the MLPs' for the CAE), plus the costs of the jobs that
    wait for it (a private DPLC's continuations, the DPLC on a CAE's encoder)."""
    cfg, c, name, start, g_state, _ = job
    r = cfg.at_rate(c)
    width = r.hidden if name == "cae" else max(r.hidden, r.decoder_hidden)
    own = (cfg.continue_steps if start == "private" else r.steps) * width * width
    if start != "scratch" or c == 0:
        return own
    starts = r.starts
    follows = "cae" if name == "cae" and "cae" in starts else "private" if name == "dplc" and "private" in starts else None
    return own + (sum(_cost(j) for j in _jobs(cfg, c, g_state, follows, {})) if follows else 0)


def _run_jobs(cfg: GaussianConfig, g_state: dict[str, Tensor], t0: float, log: Any) -> dict[tuple[int, str, str], dict[str, Any]]:
    """Train every codec at every rate and start, in ``cfg.workers`` spawned processes when > 1,
    the waiting jobs with the highest :func:`_cost` first; a private DPLC's continuations (and
    the DPLC on a CAE's encoder) wait for it (the CAE) and join the queue when it ends. One line per finished job. Returns the figures by
    (C, codec, start)."""
    pending = [job for c in cfg.rates for job in _jobs(cfg, c, g_state, "scratch")]
    done: dict[tuple[int, str, str], dict[str, Any]] = {}

    def finish(job: Job, m: dict[str, Any], state: dict[str, Any] | None) -> None:
        _, c, name, start, _, _ = job
        done[(c, name, start)] = m
        if state is not None:
            pending.extend(_jobs(cfg, c, g_state, "cae" if name == "cae" else "private", state))
        log(f"gaussian: {name} C={c} from {start} trained ({len(done)} done, {time.perf_counter() - t0:.0f} s)")

    def take() -> Job:
        pending.sort(key=lambda j: -_cost(j))  # stable
        return pending.pop(0)

    if cfg.workers == 1:
        while pending:
            job = take()
            finish(job, *_codec_job(job))
        return done
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ProcessPoolExecutor(cfg.workers, mp_context=ctx) as pool:
        running: dict[Any, Job] = {}
        while pending or running:
            while pending and len(running) < cfg.workers:
                job = take()
                running[pool.submit(_codec_job, job)] = job
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                finish(running.pop(future), *future.result())
    return done


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
    encoder, generator = train_autoencoder(cfg, source)
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
            "mse_wrong_noise", "variance_error_wrong_noise", "code_mmse", "transport_floor")  # fmt: skip
    names = cfg.codecs
    rows: dict[str, list] = {f"{k}_{n}": [] for k in keys for n in names}
    rows |= {f"{k}_{n}": [] for k in ("start", "candidates") for n in names if n != "cae"}
    done = _run_jobs(cfg, generator.state_dict(), t0, log)
    torch.set_num_threads(cfg.threads)
    if "dplc_shared" in names and cfg.shared == "polar":
        axes, weights = principal_axes(generator, cfg.dim, n=100_000)
        for c in cfg.rates:
            done[(c, "dplc_shared", "scratch")] = polar_figures(cfg, c, encoder, generator, axes, tuple(weights))
        log(f"gaussian: dplc_shared (polar) coded at every rate ({time.perf_counter() - t0:.0f} s)")
    for i, c in enumerate(cfg.rates):
        for name in names:
            found = {st: done[(c, name, st)] for st in STARTS if (c, name, st) in done}
            candidates = [found[st] for st in cfg.at_rate(c).starts if st in found] or [found["scratch"]]  # C = 0, the CAE
            m = candidates[0] if name == "cae" else choose(candidates, cfg.mmd_epsilon)
            if name != "cae":
                rows[f"start_{name}"].append(m["start"])
                rows[f"candidates_{name}"].append({x["start"]: {k: x.get(k) for k in CANDIDATE_KEYS} for x in candidates})
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
    realism), the largest decode variance error, the largest W₂²/σ² and MSE_dplc / MSE_cae; and
    DPLC / 2·D_K split into its code's own quality, E Var(X | J) / D_K, times B's,
    MSE / (2·E Var(X | J)) (:func:`dplc.gaussian_bounds.code_mmse`); and, where measured, the
    exact floor of DPLC's code at perfect realism over 2·D_K and DPLC's MSE over that floor
    (:func:`dplc.gaussian_bounds.transport_floor`: what no B decoding that code could beat)."""
    out: dict[str, Any] = {}
    over = lambda n, k: [m / (k * d) for m, d in zip(rows[f"mse_{n}"], d_k, strict=True)]  # noqa: E731
    if "cae" in names:
        out["gaussian_cae_over_dk"] = over("cae", 1)
    for n, key in (("dplc", "dplc"), ("dplc_shared", "shared")):
        if n in names:
            out[f"gaussian_{key}_over_2dk"] = over(n, 2)
            out[f"gaussian_{key}_variance_error_max"] = max(abs(e) for v in rows[f"variance_error_{n}"] for e in v)
            out[f"w2_over_sigma2_max_{n}"] = max(rows[f"w2_{n}"])
    if "dplc" in names and None not in rows["code_mmse_dplc"]:  # DPLC / 2·D_K = code's share × B's share
        code = rows["code_mmse_dplc"]
        out["gaussian_dplc_code_over_dk"] = [j / d for j, d in zip(code, d_k, strict=True)]
        out["gaussian_dplc_over_2code"] = [m / (2 * j) for m, j in zip(rows["mse_dplc"], code, strict=True)]
    if "dplc" in names and None not in rows.get("transport_floor_dplc", [None]):  # the code's exact floor
        floor = rows["transport_floor_dplc"]
        out["gaussian_dplc_floor_over_2dk"] = [f / (2 * d) for f, d in zip(floor, d_k, strict=True)]
        out["gaussian_dplc_over_floor"] = [m / f for m, f in zip(rows["mse_dplc"], floor, strict=True)]
    if "dplc" in names and "cae" in names:
        out["mse_ratio"] = [a / b for a, b in zip(rows["mse_dplc"], rows["mse_cae"], strict=True)]
    if "dplc" in names:
        out["gaussian_variance_error_max"] = out["gaussian_dplc_variance_error_max"]
    return out
