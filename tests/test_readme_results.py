"""The README's results table is the report stage's results JSON (scripts/readme_results.py)."""

from __future__ import annotations

import doctest
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from dplc.report import fmt

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("readme_results", ROOT / "scripts" / "readme_results.py")
readme_results = importlib.util.module_from_spec(_spec)
sys.modules["readme_results"] = readme_results  # dataclasses look their module up there
_spec.loader.exec_module(readme_results)


def test_committed_readme_shows_the_committed_results() -> None:
    """The table between the markers is exactly what the committed results JSON renders."""
    assert readme_results.main(["--check"]) == 0


def test_a_changed_number_fails_the_check(tmp_path: Path) -> None:
    """Power: one MSE in the JSON moved (a new run not copied to the README) fails --check, and
    --write then makes the README show it."""
    res = json.loads(readme_results.RESULTS.read_text())
    moved = res["mse_dplc"][-1] * 1.5  # a value the committed table cannot already show
    res["mse_dplc"][-1] = moved
    results = tmp_path / "results.json"
    results.write_text(json.dumps(res))
    readme = tmp_path / "README.md"
    readme.write_text(readme_results.README.read_text())
    args = ["--readme", str(readme), "--results", str(results)]
    assert readme_results.main(["--check", *args]) == 1
    assert readme_results.main(["--write", *args]) == 0
    assert readme_results.main(["--check", *args]) == 0
    assert f"| 1024 | {fmt(res['bpp_payload_dplc'][-1], 3)} | {fmt(moved, 3)} |" in readme.read_text()


def test_missing_markers_are_refused() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        readme_results.replace_table("no table here", "| a |")


def test_docstring_examples() -> None:
    assert doctest.testmod(readme_results).failed == 0


def test_headline_json_carries_the_report_stages_lists() -> None:
    """reports/bench/results.json (benchmarks/results.py) holds every list of the report stage's
    reports/results.json unchanged, so the README cannot show a run older than the report."""
    report = json.loads((ROOT / "reports" / "results.json").read_text())
    headline = json.loads(readme_results.RESULTS.read_text())
    assert {k: headline.get(k) for k in report} == report


def test_a_seed_spread_of_another_run_is_left_out() -> None:
    """benchmarks/results.py shows a rate's spread over seeds only when one of its seeds is this
    run's codec: its doctest, where a run whose ratio no seed has (a changed recipe) gets None."""
    spec = importlib.util.spec_from_file_location("bench_results", ROOT / "benchmarks" / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert doctest.testmod(module).failed == 0
    entry = {"bits_per_image": 64.0, "mse_ratio_dplc_cae": {"values": [1.8, 2.0], "mean": 1.9, "sd": 0.1}}
    mean, sd, dropped = module.seed_spread({"4": entry}, [64.0], [1.8 * (1 + 1e-6)])
    assert mean == [None] and sd == [None] and list(dropped) == ["64"]
