"""The paper's findings, the headline figures and their Markdown sections, from the report's
results (:func:`dplc.report.build_results`).

Tschannen et al. 2018 (§5) report five qualitative findings on their Figures 2–4; :func:`findings`
checks each on our results with an explicit tolerance, :func:`headline` gathers the figures
the README and ``reports/results.json`` quote. The codec names (``dplc_wpp``, ``gc``, ``cae``)
are the pipeline's (:func:`pipelines.params.codec_name`).
"""

from __future__ import annotations

import math
from typing import Any

from dplc.gaussian import START_MEANINGS
from dplc.report import as_int, finite, fmt
from pipelines.params import HEADLINE_DPLC, HEADLINE_SHARED

FID_TOLERANCE = 0.1
"""δ of finding (iii) when the results carry no bootstrap s.d. of their FIDs (older results)."""


def _series(results: dict[str, dict], name: str, key: str) -> list[float]:
    return list(results.get(name, {}).get("results", {}).get(key, []))


def _aligned(results: dict[str, dict], name: str, key: str, channels: list[int]) -> list[float | None]:
    """``name``'s ``key`` at each code size of ``channels`` (None where it has no codec)."""
    res = results.get(name, {}).get("results", {})
    by_c = dict(zip(res.get("code_channels", []), res.get(key, []), strict=False))
    return [by_c.get(c) if c in by_c and finite(by_c[c]) else None for c in channels]


def fid_tolerance(sd_a: float, sd_b: float) -> float:
    """How far apart two independent FID estimates may lie and still count as one value: two
    standard deviations of their difference, 2·√(sd_a² + sd_b²) (the s.d. are the bootstrap
    ones of :mod:`dplc.fid_noise`)."""
    return 2.0 * math.sqrt(sd_a**2 + sd_b**2)


def _finding_iii(rfid: list[float], s: float, rfid_sd: list[float], sfid_sd: list[float]) -> dict[str, Any]:
    """rFID(R) ≤ sFID + noise at every rate, and rFID non-increasing within the noise."""
    sds = list(rfid_sd) + (list(sfid_sd[:1]) if sfid_sd else [])
    bootstrap = len(rfid_sd) == len(rfid) and bool(sfid_sd) and all(map(math.isfinite, sds))
    if bootstrap:
        above = [fid_tolerance(sd, sfid_sd[0]) for sd in rfid_sd]
        step = [fid_tolerance(a, b) for a, b in zip(rfid_sd, rfid_sd[1:], strict=False)]
    else:
        above = [s * FID_TOLERANCE] * len(rfid)
        step = [a * FID_TOLERANCE for a in rfid[:-1]]
    bounded = all(r <= s + t for r, t in zip(rfid, above, strict=True))
    falling = all(b <= a + t for a, b, t in zip(rfid, rfid[1:], step, strict=False))
    return {
        "held": bool(bounded and falling),
        "bounded_by_sfid": bounded,
        "non_increasing": falling,
        "noise": "bootstrap" if bootstrap else f"fixed {FID_TOLERANCE:.0%}",
        "delta": [t / s if s else None for t in above],
        "step_tolerance": step,
        "sfid": s,
        "rfid": rfid,
    }


def findings(results: dict[str, dict], dplc: str = HEADLINE_DPLC) -> dict[str, Any]:
    """The paper's five findings (Tschannen et al. 2018), each True/False with the numbers behind it.

    Thresholds (stated so they can be argued with): (i) MSE_dplc(0) / MSE_cae(0) in [1.5, 2.5];
    (ii) MSE non-increasing in rate for every learned codec; (iii) as the paper states it, the
    decodes are at least as realistic as G*'s samples: rFID_dplc(R) ≤ sFID(G*)·(1 + δ_R) at every
    rate and rFID non-increasing in rate within the noise of the two values compared, where the
    noise of a difference is :func:`fid_tolerance` of the two FIDs' bootstrap s.d.
    (``δ_R = fid_tolerance(sd_rFID(R), sd_sFID) / sFID``; a fixed ``FID_TOLERANCE`` of 10% when the
    results carry no s.d.); (iv) PV_gc(R) ≤ 0.1·PV_gc(0) for R > 0 while PV_dplc is
    non-increasing and PV_dplc(first R > 0) ≥ 0.1·PV_dplc(0); (v) rFID_cae ≥ 2·rFID_dplc at the
    lowest positive rate.
    """
    cc = _series(results, dplc, "code_channels")
    mse_d, mse_c = _series(results, dplc, "mse"), _series(results, "cae", "mse")
    out: dict[str, Any] = {}
    if cc and mse_c and cc[0] == 0:
        ratio = mse_d[0] / mse_c[0] if mse_c[0] > 0 else float("nan")
        out["i_rate0_twice_variance"] = {"held": bool(1.5 <= ratio <= 2.5), "ratio": ratio}
    mono = {}
    for name, r in results.items():
        if r["kind"] == "learned":
            m = r["results"]["mse"]
            mono[name] = all(b <= a * 1.02 for a, b in zip(m, m[1:], strict=False))
    out["ii_mse_falls_with_rate"] = {"held": bool(mono) and all(mono.values()), "per_codec": mono}
    rfid, sfid = _series(results, dplc, "rfid_featnet"), _series(results, dplc, "sfid_featnet")
    if rfid and sfid and finite(sfid[0]):  # a ladder without rate 0 has no sFID to judge by
        out["iii_rfid_at_most_sfid"] = _finding_iii(
            rfid, sfid[0], _series(results, dplc, "rfid_featnet_sd"), _series(results, dplc, "sfid_featnet_sd")
        )
    pv_g, pv_d = _series(results, "gc", "pv"), _series(results, dplc, "pv")
    if len(pv_g) > 1 and len(pv_d) > 1:
        collapse = all(p <= 0.1 * pv_g[0] for p in pv_g[1:])
        gradual = (
            all(b <= a * 1.05 for a, b in zip(pv_d, pv_d[1:], strict=False))
            and pv_d[1] >= 0.1 * pv_d[0]
        )
        out["iv_gc_pv_collapses_dplc_gradual"] = {
            "held": bool(collapse and gradual),
            "pv_gc": pv_g,
            "pv_dplc": pv_d,
        }
    rf_c = _series(results, "cae", "rfid_featnet")
    if len(rf_c) > 1 and len(rfid) > 1:
        out["v_cae_fid_poor_at_low_rate"] = {
            "held": bool(rf_c[1] >= 2 * rfid[1]),
            "rfid_cae": rf_c[1],
            "rfid_dplc": rfid[1],
        }
    return out


def headline(
    results: dict[str, dict],
    found: dict[str, Any],
    featnet_accuracy: float,
    gaussian: dict[str, Any] | None = None,
    dplc: str = HEADLINE_DPLC,
    shared: str = HEADLINE_SHARED,
) -> dict[str, Any]:
    """The headline figures: lists aligned with the ladder ``bits_per_image``, plus numbers.

    ``dplc`` is DPLC on the Wasserstein++ generator, ``shared`` DPLC with shared noise on it
    (None where it has no codec, e.g. at rate 0); ``sfid_generator`` is DPLC's rate-0 sFID.
    Ratios: MSE_dplc / MSE_cae and rFID_dplc / sFID(G*) per rate, PV_dplc(top) / PV_dplc(first
    positive rate).
    """
    bits = _series(results, dplc, "bits_fixed")
    out: dict[str, Any] = {"bits_per_image": bits}
    for key, name, field in (
        ("mse_dplc", dplc, "mse"), ("mse_cae", "cae", "mse"), ("mse_gc", "gc", "mse"),
        ("psnr_dplc", dplc, "psnr"), ("psnr_cae", "cae", "psnr"), ("psnr_gc", "gc", "psnr"),
        ("rfid_dplc", dplc, "rfid_featnet"), ("rfid_cae", "cae", "rfid_featnet"),
        ("rfid_gc", "gc", "rfid_featnet"), ("pv_dplc", dplc, "pv"), ("pv_gc", "gc", "pv"),
        ("pv_cae", "cae", "pv"), ("bpp_payload_dplc", dplc, "bpp_payload"),
    ):  # fmt: skip
        out[key] = _series(results, name, field)
    for g in ("wgan_gp", "wae"):
        out[f"mse_dplc_{g}"] = _series(results, f"dplc_{g}", "mse")
        out[f"rfid_dplc_{g}"] = _series(results, f"dplc_{g}", "rfid_featnet")
        sf = _series(results, f"dplc_{g}", "sfid_featnet")
        out[f"sfid_generator_{g}"] = sf[0] if sf else None
    sfid = _series(results, dplc, "sfid_featnet")
    out["sfid_generator"] = sfid[0] if sfid else None
    out["featnet_test_accuracy"] = featnet_accuracy
    out["mse_ratio_dplc_cae"] = [
        a / b if finite(a) and finite(b) and b > 0 else None
        for a, b in zip(out["mse_dplc"], out["mse_cae"], strict=False)
    ]
    out["rfid_dplc_over_sfid"] = [
        r / out["sfid_generator"] if out["sfid_generator"] else None for r in out["rfid_dplc"]
    ]
    pv = out["pv_dplc"]
    out["pv_dplc_top_over_first_positive"] = pv[-1] / pv[1] if len(pv) > 2 and pv[1] > 0 else None
    nan_to_none = lambda vs: [v if finite(v) else None for v in vs]  # noqa: E731 - JSON has no NaN
    out["latent_mmd_sd_dplc"] = nan_to_none(_series(results, dplc, "latent_mmd_sd"))
    out["latent_mmd_sd_dplc_spread"] = nan_to_none(_series(results, dplc, "latent_mmd_sd_spread"))
    out["lambda_rate_dplc"] = nan_to_none(_series(results, dplc, "lambda_rate"))
    out["mse_mean_decode_dplc"] = nan_to_none(_series(results, dplc, "mse_mean_decode"))
    floor = _series(results, dplc, "inversion_floor_mse")
    out["inversion_floor_mse"] = floor[0] if floor and finite(floor[0]) else None
    out |= _shared_series(results, shared, _series(results, dplc, "code_channels"), out)
    out["findings"] = {k: bool(v["held"]) for k, v in found.items()}
    if gaussian is not None:
        out["gaussian_bits"] = gaussian["bits"]
        out["gaussian_mse_ratio"] = gaussian["mse_ratio"]
        out["gaussian_w2_over_sigma2"] = gaussian["w2_over_sigma2_max_dplc"]
        for key in ("gaussian_dplc_over_2dk", "gaussian_cae_over_dk", "gaussian_variance_error_max",
                    "gaussian_shared_over_2dk", "gaussian_shared_variance_error_max",
                    "gaussian_dplc_code_over_dk", "gaussian_dplc_over_2code",
                    "gaussian_dplc_floor_over_2dk", "gaussian_dplc_over_floor"):  # fmt: skip
            out[key] = gaussian.get(key)
        out["gaussian_shared_mse"] = gaussian.get("mse_dplc_shared")
    return out


def _shared_series(results: dict[str, dict], shared: str, channels: list[int],
                   out: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """DPLC with shared noise, aligned with ``channels`` (None where it has no codec), and its
    MSE over DPLC's and CAE's (``out``'s ``mse_dplc`` and ``mse_cae``)."""
    series: dict[str, Any] = {}
    for field, key in (("mse", "mse"), ("rfid_featnet", "rfid"), ("latent_mmd_sd", "latent_mmd_sd"),
                       ("pv", "pv"), ("bpp_payload", "bpp_payload")):  # fmt: skip
        series[f"{key}_dplc_shared"] = _aligned(results, shared, field, channels)
    for other in ("dplc", "cae"):
        series[f"mse_ratio_shared_{other}"] = [
            a / b if a is not None and finite(b) and b > 0 else None
            for a, b in zip(series["mse_dplc_shared"], out[f"mse_{other}"], strict=False)
        ]
    return series


def ratio_section(h: dict[str, Any]) -> str:
    """Markdown: the ratios that matter most, per rate (DPLC with shared noise where it has a
    codec, a dash elsewhere, e.g. at rate 0)."""
    lines = [
        "",
        "## Ratios (DPLC on the Wasserstein++ G*)",
        "",
        "| bits/image | MSE_DPLC / MSE_CAE | rFID_DPLC / sFID(G*) | PV_DPLC | PV_GC "
        "| MSE_shared / MSE_DPLC | MSE_shared / MSE_CAE | latent MMD shared (null s.d.) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    n = len(h["bits_per_image"])

    def col(k: str, i: int) -> float:
        v = h.get(k) or []
        return v[i] if i < len(v) and v[i] is not None else float("nan")

    for i in range(n):
        lines.append(
            f"| {as_int(h['bits_per_image'][i])} | {fmt(col('mse_ratio_dplc_cae', i), 3)} | "
            f"{fmt(col('rfid_dplc_over_sfid', i), 3)} | {fmt(col('pv_dplc', i))} | {fmt(col('pv_gc', i))} | "
            f"{fmt(col('mse_ratio_shared_dplc', i), 3)} | {fmt(col('mse_ratio_shared_cae', i), 3)} | "
            f"{fmt(col('latent_mmd_sd_dplc_shared', i), 3)} |"
        )
    return "\n".join(lines) + "\n"


def _starts(g: dict[str, Any]) -> str:
    """A sentence naming each DPLC's kept start per rate, when the study trained more than one."""
    config = g.get("config", {})
    starts = config.get("starts", ["scratch"])
    if len(starts) < 2:
        return ""
    kept = [f"{n} {', '.join(g[f'start_{n}'])}" for n in ("dplc", "dplc_shared") if f"start_{n}" in g]
    ways = "; ".join(f"{st}, {START_MEANINGS[st]}" for st in starts)
    per_rate = {str(c): v for c, v in (config.get("per_rate") or {}).items()}  # JSON's keys are strings
    only = [f"{bits:g} bits {', '.join(per_rate[str(c)]['starts'])} only"
            for c, bits in zip(g.get("code_scalars", []), g.get("bits", []), strict=False)
            if "starts" in per_rate.get(str(c), {})]  # fmt: skip
    return (f" Each DPLC was trained from every start ({ways}{'; at ' + ', '.join(only) if only else ''}) and kept "
            f"the start of least validation MSE among those ending within their held-out realism checks "
            f"(the first where none did), per rate: {'; '.join(kept)}.")


def _split(g: dict[str, Any], i: int) -> str:
    """DPLC / 2·D_K's two factors at rate ``i``: the code's E Var(X | J) / D_K and B's
    MSE / (2·E Var(X | J)) (:func:`dplc.gaussian_study.summarize`)."""
    return f" = {fmt(g['gaussian_dplc_code_over_dk'][i], 3)} × {fmt(g['gaussian_dplc_over_2code'][i], 3)}"


def _split_note(split: bool) -> str:
    """The sentence that reads the split column, where there is one."""
    if not split:
        return ""
    return (" DPLC / 2·D_K is split into its code's own quality, E Var(X | J) / D_K (1 for a Lloyd "
            "code), times B's, MSE / (2·E Var(X | J)) (1 for B sampling each cell's posterior; exact "
            "realism allows down to (1 + D_K / E Var(X | J)) / 2).")


def gaussian_section(g: dict[str, Any]) -> str:
    """Markdown: the Gaussian source against its closed-form limits and its one-shot bounds."""
    v = g["config"]["variances"]
    shared = "mse_dplc_shared" in g
    split = "gaussian_dplc_code_over_dk" in g
    head = "| DPLC shared | shared / 2·D_K | shared max variance error " if shared else ""
    split_head = "= code / D_K × B " if split else ""
    lines = [
        "",
        f"## Gaussian source (d = {len(v)}, σ² = {v}; MSE per dimension)",
        "",
        "| bits/vector | D(R) | 2·D(R) | D(R,0) | D_K | MSE CAE | CAE / D_K | MSE DPLC | DPLC / 2·D_K "
        f"{split_head}| DPLC max variance error | λ_rate DPLC {head}|",
        "|---:" * (11 + 3 * shared) + "|",
    ]
    for i, b in enumerate(g["bits"]):
        lam = g.get("lambda_rate_dplc", [None] * len(g["bits"]))[i]
        verr = max(abs(e) for e in g["variance_error_dplc"][i])
        extra = (
            f" {fmt(g['mse_dplc_shared'][i])} | {fmt(g['gaussian_shared_over_2dk'][i], 3)} | "
            f"{fmt(max(abs(e) for e in g['variance_error_dplc_shared'][i]), 3)} |"
            if shared else ""
        )  # fmt: skip
        lines.append(
            f"| {as_int(b)} | {fmt(g['d_opt'][i])} | {fmt(g['d_private'][i])} | "
            f"{fmt(g['d_common'][i])} | {fmt(g['d_k'][i])} | {fmt(g['mse_cae'][i])} | "
            f"{fmt(g['gaussian_cae_over_dk'][i], 3)} | {fmt(g['mse_dplc'][i])} | "
            f"{fmt(g['gaussian_dplc_over_2dk'][i], 3)}{_split(g, i) if split else ''} | {fmt(verr, 3)} | "
            f"{fmt(lam, 3) if i else '–'} |{extra}"
        )
    form = f" Shared: the decoder's noise is the encoder's too ({g['config'].get('shared')} form)." if shared else ""
    lines.append(
        f"\nG* alone: W₂²/σ² = {fmt(g['generator_w2_over_sigma2'])}. D_K: Lloyd's K = 2^R-cell "
        "quantizer; with exact realism and private noise MSE ≥ 2·D_K, which shared noise can beat "
        f"(its limit is D(R,0)).{_split_note(split)}{form}{_starts(g)} Plot: plots/gaussian.png.\n"
    )
    return "\n".join(lines) + "\n"
