"""Results files, plots and the summary table from evaluation outputs.

One schema for learned and classical codecs (like CompressAI's results files): a JSON object
per codec ::

    {"name": "dplc_wpp", "kind": "learned" | "classical", "features": "featnet",
     "results": {"bits": [...], "bpp_fixed": [...], "bpp_payload": [...], "bpp_file": [...],
                 "mse": [...], "psnr": [...], "rfid_featnet": [...], "pv": [...], ...}}

where every list is aligned with the codec's operating points (rates, or quality settings).
:func:`build_results` turns the evaluate stage's per-rate files into that schema and
:func:`write_report` draws the plots (PNG, plus CSV for ``dvc plots``) and the Markdown table.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

LEARNED_KEYS = (
    "bits_fixed", "bits_ideal", "bits_payload", "bpp_fixed", "bpp_ideal", "bpp_payload", "bpp_file",
    "mse", "psnr", "rfid_featnet", "rkid_featnet", "sfid_featnet", "skid_featnet", "pv",
    "mse_mean_decode", "mse_pv_images", "latent_mmd_sd", "lambda_rate", "inversion_floor_mse",
)  # fmt: skip


def build_results(
    rate_files: list[dict[str, Any]], classical: dict[str, Any] | None = None
) -> dict[str, dict]:
    """Per-rate evaluation outputs (+ classical sweep) -> {codec: results object}."""
    by_codec: dict[str, dict[str, list]] = {}
    for rf in sorted(rate_files, key=lambda r: r["code_channels"]):
        for name, m in rf["codecs"].items():
            res = by_codec.setdefault(name, {"code_channels": []})
            res["code_channels"].append(rf["code_channels"])
            for k in LEARNED_KEYS:
                res.setdefault(k, []).append(m.get(k, float("nan")))
    out = {
        name: {"name": name, "kind": "learned", "features": "featnet", "results": res}
        for name, res in by_codec.items()
    }
    for name, points in (classical or {}).get("codecs", {}).items():
        keys = sorted({k for p in points for k in p})
        res = {k: [p.get(k, float("nan")) for p in points] for k in keys}
        out[name] = {"name": name, "kind": "classical", "features": "featnet", "results": res}
    return out


FID_TOLERANCE = 0.1
"""δ of finding (iii): the relative FID difference treated as noise."""


LOG_FROM_BPP = 0.01
"""The bpp axes are logarithmic above this rate and linear below it (so rate 0 is drawn)."""

COMPRESSAI_KEYS = {"bpp_file": "bpp", "bpp_payload": "bpp_payload", "psnr": "psnr", "mse": "mse",
                   "rfid_featnet": "rfid", "rkid_featnet": "rkid", "pv": "pv",
                   "encoding_time": "encoding_time", "decoding_time": "decoding_time"}  # fmt: skip
"""Our result keys -> the keys of CompressAI's results JSON (``bpp`` is the real file rate)."""


def compressai_layout(result: dict[str, Any], description: str) -> dict[str, Any]:
    """One codec's results in CompressAI's results-JSON layout (``name``, ``description``,
    ``results`` with per-point lists), as read by CompressAI's plotting and BD-rate tools."""
    res = result["results"]
    out = {new: list(res[old]) for old, new in COMPRESSAI_KEYS.items() if old in res}
    return {"name": result["name"], "description": description, "results": out}


def rate_savings(
    results: dict[str, dict], ours: str, others: list[str], metrics: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Rate change of ``ours`` against each other codec at equal metric
    (:func:`dplc.rate_savings.rate_change_percent`; learned codecs at their payload bpp,
    classical ones at their file bpp): rows ``{"ours", "other", "metric", "pct"}``."""
    from dplc.rate_savings import rate_change_percent

    def curve(name: str) -> dict[str, list]:
        r = results[name]
        res = r["results"]
        return res | {"bpp": res["bpp_payload" if r["kind"] == "learned" else "bpp_file"]}

    return [
        {"ours": ours, "other": other, "metric": metric,
         "pct": rate_change_percent(curve(ours), curve(other), metric)}  # fmt: skip
        for other in others
        if ours in results and other in results
        for metric in metrics
    ]


def rate_savings_section(rows: list[dict[str, Any]]) -> str:
    """Markdown: the rate each comparison changes at equal quality."""
    lines = ["", "## Rate at equal quality", "",
             "Percent rate change at equal metric over the range both curves cover (negative: "
             "fewer bits); piecewise-linear interpolation of log-rate (`dplc.rate_savings`).", "",
             "| codec | against | metric | rate change |", "|---|---|---|---:|"]  # fmt: skip
    for r in rows:
        shown = "no overlap" if r["pct"] is None else f"{r['pct']:+.1f}%"
        lines.append(f"| {r['ours']} | {r['other']} | {r['metric']} | {shown} |")
    return "\n".join(lines) + "\n"


def _finite(v: float) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _plot(
    results: dict[str, dict],
    x: str,
    y: str,
    path: Path,
    logy: bool = False,
    learned_only: bool = False,
) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=120)
    for name, r in sorted(results.items()):
        res = r["results"]
        if learned_only and r["kind"] != "learned":
            continue
        xs = res.get(x if r["kind"] == "learned" else "bpp_file", [])
        ys = res.get(y, [])
        pts = [(a, b) for a, b in zip(xs, ys, strict=False) if _finite(a) and _finite(b)]
        if not pts:
            continue
        style = "-o" if r["kind"] == "learned" else "--."
        ax.plot(*zip(*pts, strict=True), style, label=name, ms=4)
    label = x.replace("_", " ") + (" (classical: file bpp)" if not learned_only else "")
    if x.startswith("bpp"):  # learned (0.02-1.3 bpp) and classical (1-8 bpp) both readable
        ax.set_xscale("symlog", linthresh=LOG_FROM_BPP, linscale=0.25)
        ax.set_xlim(left=0)
        label += f", log scale above {LOG_FROM_BPP} (rate 0 at the left edge)"
    ax.set_xlabel(label, fontsize=8)
    ax.set_ylabel(y.replace("_", " "))
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if _finite(v) else "–"


def _int(v: Any) -> str:
    return f"{v:.0f}" if _finite(v) else "–"


def markdown_table(results: dict[str, dict]) -> str:
    """The summary table: one row per learned codec and rate, then the classical points."""
    lines = [
        "| codec | C | bits fixed | bpp fixed | bpp payload | MSE | PSNR | rFID | sFID | KID | PV |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(results.items()):
        if r["kind"] != "learned":
            continue
        res = r["results"]
        for i, c in enumerate(res["code_channels"]):

            def g(k: str, i: int = i, res: dict = res) -> float:
                return res.get(k, [float("nan")] * (i + 1))[i]

            lines.append(
                f"| {name} | {c} | {_fmt(g('bits_fixed'))} | {_fmt(g('bpp_fixed'), 3)} | {_fmt(g('bpp_payload'), 3)} | "
                f"{_fmt(g('mse'))} | {_fmt(g('psnr'), 3)} | {_fmt(g('rfid_featnet'), 3)} | {_fmt(g('sfid_featnet'), 3)} | "
                f"{_fmt(g('rkid_featnet'), 2)} | {_fmt(g('pv'), 3)} |"
            )
    classical = [(n, r) for n, r in sorted(results.items()) if r["kind"] == "classical"]
    if classical:
        lines += [
            "",
            "| classical | quality | bpp file | bpp payload | MSE | PSNR | rFID |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, r in classical:
            res = r["results"]
            for i in range(len(res.get("quality", []))):

                def g(k: str, i: int = i, res: dict = res) -> float:
                    return res.get(k, [float("nan")] * (i + 1))[i]

                lines.append(
                    f"| {name} | {_fmt(g('quality'))} | {_fmt(g('bpp_file'), 3)} | {_fmt(g('bpp_payload'), 3)} | "
                    f"{_fmt(g('mse'))} | {_fmt(g('psnr'), 3)} | {_fmt(g('rfid_featnet'), 3)} |"
                )
    return "\n".join(lines) + "\n"


def write_report(
    results: dict[str, dict], out_dir: str | Path, extra_md: str = ""
) -> dict[str, Path]:
    """Write results/<codec>.json, plots (PNG + CSV) and results.md under ``out_dir``."""
    out = Path(out_dir)
    files: dict[str, Path] = {}
    (out / "results").mkdir(parents=True, exist_ok=True)
    for name, r in results.items():
        p = out / "results" / f"{name}.json"
        p.write_text(json.dumps(r, indent=2))
        files[f"results/{name}"] = p
    plots = out / "plots"
    files["mse.png"] = _plot(results, "bpp_payload", "mse", plots / "mse.png", logy=True)
    files["psnr.png"] = _plot(results, "bpp_payload", "psnr", plots / "psnr.png")
    files["rfid.png"] = _plot(results, "bpp_payload", "rfid_featnet", plots / "rfid.png", logy=True)
    files["pv.png"] = _plot(results, "bits_fixed", "pv", plots / "pv.png", learned_only=True)
    files["mse.csv"] = _csv_named(results, "bpp_payload", "mse", plots / "mse.csv", "bpp")
    files["rfid.csv"] = _csv_named(
        results, "bpp_payload", "rfid_featnet", plots / "rfid.csv", "bpp", "rfid"
    )
    files["pv.csv"] = _csv_named(
        results, "bits_fixed", "pv", plots / "pv.csv", "bits", "pv", learned_only=True
    )
    md = out / "results.md"
    md.write_text(
        "# Results\n\nFIDs use the domain feature network (`featnet`), not Inception.\n\n"
        + markdown_table(results)
        + extra_md
    )
    files["results.md"] = md
    return files


def _csv_named(
    results: dict[str, dict],
    x: str,
    y: str,
    path: Path,
    x_name: str,
    y_name: str | None = None,
    learned_only: bool = False,
) -> Path:
    """CSV for `dvc plots` with column names ``x_name`` and ``y_name``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["codec", x_name, y_name or y])
        for name, r in sorted(results.items()):
            if learned_only and r["kind"] != "learned":
                continue
            res = r["results"]
            xs = res.get(x if r["kind"] == "learned" else "bpp_file", [])
            for a, b in zip(xs, res.get(y, []), strict=False):
                if _finite(a) and _finite(b):
                    w.writerow([name, a, b])
    return path


def _series(results: dict[str, dict], name: str, key: str) -> list[float]:
    return list(results.get(name, {}).get("results", {}).get(key, []))


def findings(results: dict[str, dict], dplc: str = "dplc_wpp") -> dict[str, Any]:
    """The paper's five findings (Tschannen et al. 2018), each True/False with the numbers behind it.

    Thresholds (stated so they can be argued with): (i) MSE_dplc(0) / MSE_cae(0) in [1.5, 2.5];
    (ii) MSE non-increasing in rate for every learned codec; (iii) as the paper states it, the
    decodes are at least as realistic as G*'s samples: rFID_dplc(R) ≤ sFID(G*)·(1 + δ) at every
    rate and rFID non-increasing in rate within the same δ (δ = ``FID_TOLERANCE``, a fixed 10%,
    not a bootstrap estimate); (iv) PV_gc(R) ≤ 0.1·PV_gc(0) for R > 0 while PV_dplc is
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
    if rfid and sfid:
        s = sfid[0]
        bounded = all(r <= s * (1 + FID_TOLERANCE) for r in rfid)
        falling = all(b <= a * (1 + FID_TOLERANCE) for a, b in zip(rfid, rfid[1:], strict=False))
        out["iii_rfid_at_most_sfid"] = {
            "held": bool(bounded and falling),
            "bounded_by_sfid": bounded,
            "non_increasing": falling,
            "delta": FID_TOLERANCE,
            "sfid": s,
            "rfid": rfid,
        }
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
    dplc: str = "dplc_wpp",
) -> dict[str, Any]:
    """The headline figures: lists aligned with the ladder ``bits_per_image``, plus numbers.

    ``dplc`` is DPLC on the Wasserstein++ generator; ``sfid_generator`` is its rate-0 sFID.
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
        a / b if _finite(a) and _finite(b) and b > 0 else None
        for a, b in zip(out["mse_dplc"], out["mse_cae"], strict=False)
    ]
    out["rfid_dplc_over_sfid"] = [
        r / out["sfid_generator"] if out["sfid_generator"] else None for r in out["rfid_dplc"]
    ]
    pv = out["pv_dplc"]
    out["pv_dplc_top_over_first_positive"] = pv[-1] / pv[1] if len(pv) > 2 and pv[1] > 0 else None
    finite = lambda vs: [v if _finite(v) else None for v in vs]  # noqa: E731 - JSON has no NaN
    out["latent_mmd_sd_dplc"] = finite(_series(results, dplc, "latent_mmd_sd"))
    out["lambda_rate_dplc"] = finite(_series(results, dplc, "lambda_rate"))
    out["mse_mean_decode_dplc"] = finite(_series(results, dplc, "mse_mean_decode"))
    floor = _series(results, dplc, "inversion_floor_mse")
    out["inversion_floor_mse"] = floor[0] if floor and _finite(floor[0]) else None
    out["findings"] = {k: bool(v["held"]) for k, v in found.items()}
    if gaussian is not None:
        out["gaussian_bits"] = gaussian["bits"]
        out["gaussian_mse_ratio"] = gaussian["mse_ratio"]
        out["gaussian_w2_over_sigma2"] = gaussian["w2_over_sigma2_max_dplc"]
        for key in ("gaussian_dplc_over_2dk", "gaussian_cae_over_dk", "gaussian_variance_error_max"):
            out[key] = gaussian.get(key)
    return out


def ratio_section(h: dict[str, Any]) -> str:
    """Markdown: the ratios that matter most, per rate."""
    lines = [
        "",
        "## Ratios (DPLC on the Wasserstein++ G*)",
        "",
        "| bits/image | MSE_DPLC / MSE_CAE | rFID_DPLC / sFID(G*) | PV_DPLC | PV_GC |",
        "|---:|---:|---:|---:|---:|",
    ]
    n = len(h["bits_per_image"])
    col = lambda k, i: h[k][i] if i < len(h[k]) else float("nan")  # noqa: E731
    for i in range(n):
        lines.append(
            f"| {_int(h['bits_per_image'][i])} | {_fmt(col('mse_ratio_dplc_cae', i), 3)} | "
            f"{_fmt(col('rfid_dplc_over_sfid', i), 3)} | {_fmt(col('pv_dplc', i))} | {_fmt(col('pv_gc', i))} |"
        )
    return "\n".join(lines) + "\n"


def gaussian_section(g: dict[str, Any]) -> str:
    """Markdown: the Gaussian source against its closed-form limits and its one-shot bounds."""
    v = g["config"]["variances"]
    lines = [
        "",
        f"## Gaussian source (d = {len(v)}, σ² = {v}; MSE per dimension)",
        "",
        "| bits/vector | D(R) | 2·D(R) | D(R,0) | D_K | MSE CAE | CAE / D_K | MSE DPLC | DPLC / 2·D_K "
        "| DPLC max variance error | λ_rate DPLC |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, b in enumerate(g["bits"]):
        lam = g.get("lambda_rate_dplc", [None] * len(g["bits"]))[i]
        verr = max(abs(e) for e in g["variance_error_dplc"][i])
        lines.append(
            f"| {_int(b)} | {_fmt(g['d_opt'][i])} | {_fmt(g['d_private'][i])} | "
            f"{_fmt(g['d_common'][i])} | {_fmt(g['d_k'][i])} | {_fmt(g['mse_cae'][i])} | "
            f"{_fmt(g['gaussian_cae_over_dk'][i], 3)} | {_fmt(g['mse_dplc'][i])} | "
            f"{_fmt(g['gaussian_dplc_over_2dk'][i], 3)} | {_fmt(verr, 3)} | "
            f"{_fmt(lam, 3) if i else '–'} |"
        )
    lines.append(
        f"\nG* alone: W₂²/σ² = {_fmt(g['generator_w2_over_sigma2'])}. D_K: Lloyd's K = 2^R-cell "
        "quantizer; with exact realism and private noise MSE ≥ 2·D_K. Plot: plots/gaussian.png.\n"
    )
    return "\n".join(lines) + "\n"
