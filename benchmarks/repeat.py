"""Do two runs of the default profile agree? Their headline lists side by side, against the seeds.

    python benchmarks/repeat.py --before bd23ebe     # a commit's reports/results.json vs. the tree's

Reads ``reports/results.json`` (the report stage's headline lists) at a git revision and in the
working tree, and writes ``reports/bench/repeat.json``: for every per-rate list that both runs
carry (MSE, rFID, latent MMD, λ_rate, the MSE ratios, the Gaussian bounds), the two values at
each rate, their largest absolute difference and, for the MSE ratio, that difference in units of
the seed standard deviation of ``reports/bench/seeds.json`` at the rates the seed benchmark
trained. "Two runs ... give ratios within the seed spread of each other" is the issue's test;
a difference of exactly 0 means the two runs computed the same numbers. ``by_rate`` says, per
rate, which lists agree there exactly and which do not, so runs whose params differ at some
rates only (``train.dplc.per_rate``) can be compared at the others.

    python benchmarks/repeat.py --before 03bb076 --out reports/bench/repeat_per_rate.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages
RESULTS = "reports/results.json"
OUT = ROOT / "reports" / "bench" / "repeat.json"


def at_revision(rev: str, path: str = RESULTS) -> dict:
    """``path`` as committed at ``rev`` (``git show``)."""
    text = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(text)


def _numbers(values: list) -> bool:
    return all(v is None or isinstance(v, (int, float)) for v in values)


def compare(before: dict, after: dict) -> dict[str, dict]:
    """{list name: {before, after, max_abs_diff}} for each numeric list both runs hold with the
    same length (None where either run has no value)."""
    out = {}
    for key in sorted(set(before) & set(after)):
        a, b = before[key], after[key]
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            a, b = [a], [b]
        if not (isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and a and _numbers(a) and _numbers(b)):
            continue
        diffs = [abs(x - y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
        out[key] = {"before": a, "after": b, "max_abs_diff": max(diffs) if diffs else None}
    return out


def by_rate(rows: dict[str, dict], bits: list[float], gaussian: bool = False) -> dict[str, dict[str, list[str]]]:
    """Per rate (as text): the lists equal in both runs there (``identical``) and those that
    differ (``differing``). The image ladder's lists, or with ``gaussian`` the ``gaussian_*``
    ones (aligned with ``gaussian_bits``); lists of another length are left out."""
    out: dict[str, dict[str, list[str]]] = {}
    for i, b in enumerate(bits):
        same, other = [], []
        for key, row in sorted(rows.items()):
            if len(row["before"]) != len(bits) or key.startswith("gaussian_") != gaussian:
                continue
            x, y = row["before"][i], row["after"][i]
            if x is None and y is None:
                continue
            (same if x == y else other).append(key)
        out[f"{b:g}"] = {"identical": same, "differing": other}
    return out


def in_seed_sds(rows: dict[str, dict], seeds: dict, bits: list[float]) -> dict[str, float | None]:
    """The MSE ratio's difference at each rate the seed benchmark trained, in its seed s.d."""
    sd = {v["bits_per_image"]: v["mse_ratio_dplc_cae"]["sd"] for v in seeds["per_rate"].values()}
    row = rows.get("mse_ratio_dplc_cae")
    if row is None:
        return {}
    return {
        f"{b:g}": (abs(x - y) / sd[b] if b in sd and x is not None and y is not None else None)
        for b, x, y in zip(bits, row["before"], row["after"], strict=True)
    }


def main() -> None:
    ap = argparse.ArgumentParser(description="compare the headline lists of two default runs")
    ap.add_argument("--before", required=True, help="the git revision of the earlier run's reports/")
    ap.add_argument("--out", type=Path, default=OUT, help=f"where the JSON goes (default {OUT.relative_to(ROOT)})")
    args = ap.parse_args()
    before = at_revision(args.before)
    after = json.loads((ROOT / RESULTS).read_text())
    rows = compare(before, after)
    seeds = json.loads((ROOT / "reports" / "bench" / "seeds.json").read_text())
    from pipelines import environment

    out = {
        "before": args.before,
        "identical_lists": sorted(k for k, r in rows.items() if r["max_abs_diff"] == 0),
        "differing_lists": {k: r["max_abs_diff"] for k, r in rows.items() if r["max_abs_diff"]},
        "mse_ratio_diff_in_seed_sd": in_seed_sds(rows, seeds, after["bits_per_image"]),
        "by_rate": by_rate(rows, after["bits_per_image"]),
        "by_gaussian_rate": by_rate(rows, after.get("gaussian_bits", []), gaussian=True),
        "rows": rows,
        "environment": environment.describe(),
    }
    args.out.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: out[k] for k in ("identical_lists", "differing_lists", "mse_ratio_diff_in_seed_sd")}, indent=1))
    for name in ("by_rate", "by_gaussian_rate"):
        print(name, json.dumps({b: r["differing"] for b, r in out[name].items()}))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
