"""DVC stage `report`: results files, plots, the Markdown table and the headline metrics.

    python -m pipelines.report

Reads runs/eval/*.json (and runs/gaussian/results.json) and writes, under ``report_dir``
(``reports/`` for the default profile, ``runs/reports/<profile>/`` for the others):
results/<codec>.json (one schema for learned and classical codecs), plots/*.png|csv,
results.md, metrics.json, results.json (the headline figures, lists aligned with the rate
ladder; ``benchmarks/results.py`` adds the timings to make reports/bench/results.json) and
environment.json (CPU model, package versions, lock digest of the run).
"""

from __future__ import annotations

import json
from pathlib import Path

from dplc import report
from dplc.method_specs import BY_NAME
from pipelines import environment, findings, tracking
from pipelines import layout as L
from pipelines import params as P


def describe(name: str, kind: str) -> str:
    """A codec's one-line description for its CompressAI-layout results file."""
    if kind == "classical":
        return f"Classical codec {name} (quality sweep, libraries via imagecodecs/Pillow; bpp of the whole file)."
    method, generator = P.parse_codec_name(name)
    return BY_NAME[method].description.format(generator=generator) + " bpp of the .dplc file."


def write_compressai(results: dict[str, dict], out: Path) -> dict[str, Path]:
    """Every codec's sweep in CompressAI's results-JSON layout, ``<out>/<codec>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, r in sorted(results.items()):
        path = out / f"{name}.json"
        path.write_text(json.dumps(report.compressai_layout(r, describe(name, r["kind"])), indent=2))
        files[f"compressai/{name}"] = path
    return files


def main() -> None:
    params = P.load()
    tracking.check_store(params)
    reports = P.report_dir(params)
    reports.mkdir(parents=True, exist_ok=True)
    eval_dir = L.eval_dir()
    rate_files = [json.loads(p.read_text()) for p in sorted(eval_dir.glob("c[0-9]*.json"))]
    classical_path = eval_dir / "classical.json"
    classical = json.loads(classical_path.read_text()) if classical_path.is_file() else None
    results = report.build_results(rate_files, classical)
    found = findings.findings(results)
    featnet = json.loads(L.featnet_metrics().read_text())
    extra = (
        "\n## Findings\n\n"
        + "\n".join(
            f"- {k}: {'held' if v['held'] else 'did not hold'} ({json.dumps({a: b for a, b in v.items() if a != 'held'})})"
            for k, v in found.items()
        )
        + f"\n\nFeature network test accuracy: {featnet['featnet_test_accuracy']:.4f}\n"
    )
    gauss_path = L.gaussian_results()
    gauss = json.loads(gauss_path.read_text()) if gauss_path.is_file() else None
    headline_lists = findings.headline(results, found, featnet["featnet_test_accuracy"], gauss)
    extra += findings.ratio_section(headline_lists)
    if gauss is not None:
        extra += findings.gaussian_section(gauss)
    savings = report.rate_savings(results, P.HEADLINE_DPLC, sorted(set(results) - {P.HEADLINE_DPLC}),
                                  ("mse", "rfid_featnet"))  # fmt: skip
    headline_lists["rate_change_at_equal_quality"] = savings
    extra += report.rate_savings_section(savings)
    (reports / "results.json").write_text(json.dumps(headline_lists, indent=2))
    files = report.write_report(results, reports, extra)
    files |= write_compressai(results, reports / "compressai")
    dplc = results.get(P.HEADLINE_DPLC, {}).get("results", {})
    headline = {
        "featnet_test_accuracy": featnet["featnet_test_accuracy"],
        "sfid_generator": (dplc.get("sfid_featnet") or [float("nan")])[0],
        "findings_held": sum(1 for v in found.values() if v["held"]),
        "findings_total": len(found),
    }
    for name in (P.HEADLINE_DPLC, P.HEADLINE_SHARED, "cae", "gc"):
        res = results.get(name, {}).get("results", {})
        for i, c in enumerate(res.get("code_channels", [])):
            headline[f"{name}.c{c}.mse"] = res["mse"][i]
            headline[f"{name}.c{c}.rfid"] = res["rfid_featnet"][i]
    (reports / "metrics.json").write_text(json.dumps(headline, indent=2))
    (reports / "environment.json").write_text(json.dumps(environment.describe(), indent=2))
    (reports / "findings.json").write_text(json.dumps(found, indent=2, default=float))
    with tracking.stage_run(params, "report") as run:
        run.log_metrics({k: v for k, v in headline.items() if isinstance(v, (int, float))})
        for p in files.values():
            run.log_artifact(Path(p), "report")
    print((reports / "results.md").read_text())


if __name__ == "__main__":
    main()
