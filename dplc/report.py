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
    "mse", "psnr", "rfid_featnet", "rfid_featnet_sd", "rkid_featnet", "sfid_featnet",
    "sfid_featnet_sd", "skid_featnet", "pv",
    "mse_mean_decode", "mse_pv_images", "latent_mmd_sd", "latent_mmd_sd_spread", "lambda_rate",
    "inversion_floor_mse",
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


def finite(v: float) -> bool:
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
        pts = [(a, b) for a, b in zip(xs, ys, strict=False) if finite(a) and finite(b)]
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


def fmt(v: Any, digits: int = 4) -> str:
    return f"{v:.{digits}g}" if finite(v) else "–"


def as_int(v: Any) -> str:
    return f"{v:.0f}" if finite(v) else "–"


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
                f"| {name} | {c} | {fmt(g('bits_fixed'))} | {fmt(g('bpp_fixed'), 3)} | {fmt(g('bpp_payload'), 3)} | "
                f"{fmt(g('mse'))} | {fmt(g('psnr'), 3)} | {fmt(g('rfid_featnet'), 3)} | {fmt(g('sfid_featnet'), 3)} | "
                f"{fmt(g('rkid_featnet'), 2)} | {fmt(g('pv'), 3)} |"
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
                    f"| {name} | {fmt(g('quality'))} | {fmt(g('bpp_file'), 3)} | {fmt(g('bpp_payload'), 3)} | "
                    f"{fmt(g('mse'))} | {fmt(g('psnr'), 3)} | {fmt(g('rfid_featnet'), 3)} |"
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
                if finite(a) and finite(b):
                    w.writerow([name, a, b])
    return path
