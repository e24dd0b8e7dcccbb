import json

import pytest

from dplc import report

RATE_FILES = [
    {"code_channels": c, "codecs": {
        "dplc_wpp": {"bits_fixed": 16.0 * c, "bpp_payload": c / 60, "mse": m, "psnr": 10.0 + c, "rfid_featnet": 9.0, "sfid_featnet": 8.5, "pv": pv},
        "cae": {"bits_fixed": 16.0 * c, "bpp_payload": c / 60, "mse": m / 2, "psnr": 12.0 + c, "rfid_featnet": 200.0 / (1 + c), "pv": 0.0},
        "gc": {"bits_fixed": 16.0 * c, "bpp_payload": c / 60, "mse": m * 0.6, "psnr": 11.0 + c, "rfid_featnet": 9.5, "pv": pv if c == 0 else 1e-5},
    }}
    for c, m, pv in ((0, 0.5, 0.2), (1, 0.15, 0.05), (4, 0.1, 0.02))
]  # fmt: skip
CLASSICAL = {"codecs": {"jpeg": [{"quality": 10.0, "bpp_file": 2.0, "bpp_payload": 0.5, "mse": 0.03, "psnr": 21.0},
                                 {"quality": 50.0, "bpp_file": 3.0, "bpp_payload": 1.2, "mse": 0.01, "psnr": 26.0}]}}  # fmt: skip


def test_report_builds_expected_files(tmp_path):
    results = report.build_results(RATE_FILES, CLASSICAL)
    assert set(results) == {"dplc_wpp", "cae", "gc", "jpeg"}
    assert results["dplc_wpp"]["results"]["code_channels"] == [0, 1, 4]
    assert results["jpeg"]["kind"] == "classical" and results["jpeg"]["results"]["quality"] == [10.0, 50.0]
    files = report.write_report(results, tmp_path)
    for name in ("mse.png", "psnr.png", "rfid.png", "pv.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 1000
    rows = (tmp_path / "plots" / "mse.csv").read_text().splitlines()
    assert rows[0] == "codec,bpp,mse" and len(rows) == 1 + 9 + 2
    md = (tmp_path / "results.md").read_text()
    assert "| dplc_wpp | 4 |" in md and "| jpeg |" in md
    back = json.loads((tmp_path / "results" / "cae.json").read_text())
    assert back["results"]["mse"] == [0.25, 0.075, 0.05] and files["results.md"].is_file()


def test_compressai_layout_and_rate_savings_rows():
    from dplc import report

    learned = {"name": "x", "kind": "learned", "features": "featnet",
               "results": {"bpp_file": [0.0, 0.1, 0.2], "bpp_payload": [0.0, 0.09, 0.19],
                           "mse": [0.5, 0.2, 0.1], "psnr": [3.0, 7.0, 10.0], "rfid_featnet": [9, 5, 4],
                           "code_channels": [0, 1, 4]}}  # fmt: skip
    layout = report.compressai_layout(learned, "a codec")
    assert layout["name"] == "x" and layout["description"] == "a codec"
    assert layout["results"]["bpp"] == [0.0, 0.1, 0.2] and layout["results"]["rfid"] == [9, 5, 4]
    assert "code_channels" not in layout["results"]
    slower = {**learned, "name": "y",
              "results": {**learned["results"], "bpp_payload": [0.0, 0.18, 0.38]}}  # fmt: skip
    rows = report.rate_savings({"x": learned, "y": slower}, "x", ["y"], ("mse",))
    assert rows == [{"ours": "x", "other": "y", "metric": "mse", "pct": pytest.approx(-50, abs=1)}]
    assert "| x | y | mse | -50" in report.rate_savings_section(rows)
