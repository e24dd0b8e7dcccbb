"""pipelines.findings: the paper's findings hold on results built to hold them and fail on results
built to break them."""

import json

from test_report import CLASSICAL, RATE_FILES

from dplc import report
from pipelines import findings


def test_findings_from_fixed_results():
    results = report.build_results(RATE_FILES, CLASSICAL)
    f = findings.findings(results)
    assert f["i_rate0_twice_variance"]["held"] and f["i_rate0_twice_variance"]["ratio"] == 2.0
    assert f["ii_mse_falls_with_rate"]["held"]
    assert f["iii_rfid_at_most_sfid"]["held"] and f["iii_rfid_at_most_sfid"]["noise"] == "fixed 10%"
    assert f["iii_rfid_at_most_sfid"]["delta"] == [0.1, 0.1, 0.1]
    assert f["iv_gc_pv_collapses_dplc_gradual"]["held"]
    assert f["v_cae_fid_poor_at_low_rate"]["held"]
    worse = json.loads(json.dumps(results))
    worse["cae"]["results"]["mse"] = [0.25, 0.3, 0.05]
    assert not findings.findings(worse)["ii_mse_falls_with_rate"]["held"]


def test_finding_iii_fails_when_decodes_are_less_realistic_than_samples():
    """(iii) as the paper states it: rFID ≤ sFID·(1 + δ) at every rate, non-increasing in rate.
    The former two-sided test passed rFID 1.5× sFID; this one must not."""
    results = report.build_results(RATE_FILES, CLASSICAL)
    above = json.loads(json.dumps(results))
    above["dplc_wpp"]["results"]["rfid_featnet"] = [8.5, 12.75, 8.0]  # 1.5 × sFID at C = 1
    f = findings.findings(above)["iii_rfid_at_most_sfid"]
    assert not f["held"] and not f["bounded_by_sfid"]
    rising = json.loads(json.dumps(results))
    rising["dplc_wpp"]["results"]["rfid_featnet"] = [8.5, 5.0, 7.0]  # below sFID but rising
    f = findings.findings(rising)["iii_rfid_at_most_sfid"]
    assert not f["held"] and f["bounded_by_sfid"] and not f["non_increasing"]


def test_finding_iii_judges_differences_against_the_bootstrap_noise():
    """With bootstrap s.d. in the results, a rise of rFID counts only beyond two s.d. of the
    difference: 0.3 with s.d. 0.05 each (tolerance 0.14) fails, 0.1 passes."""
    results = report.build_results(RATE_FILES, CLASSICAL)
    r = results["dplc_wpp"]["results"]
    r["sfid_featnet_sd"] = [0.05, float("nan"), float("nan")]
    r["rfid_featnet_sd"] = [0.05, 0.05, 0.05]
    r["rfid_featnet"] = [8.0, 5.0, 5.3]
    f = findings.findings(results)["iii_rfid_at_most_sfid"]
    assert f["noise"] == "bootstrap" and not f["non_increasing"] and not f["held"]
    assert f["step_tolerance"][1] == 2 * (0.05**2 * 2) ** 0.5
    r["rfid_featnet"] = [8.0, 5.0, 5.1]
    assert findings.findings(results)["iii_rfid_at_most_sfid"]["held"]
    sfid = r["sfid_featnet"][0]
    r["rfid_featnet"] = [sfid + 0.2, 5.0, 5.0]  # above sFID by more than its noise (0.14)
    assert not findings.findings(results)["iii_rfid_at_most_sfid"]["bounded_by_sfid"]


def test_headline_lists_and_nan_free_json():
    results = report.build_results(RATE_FILES, CLASSICAL)
    h = findings.headline(results, findings.findings(results), 0.9)
    assert h["bits_per_image"] == [0.0, 16.0, 64.0] and h["mse_ratio_dplc_cae"] == [2.0, 2.0, 2.0]
    assert h["latent_mmd_sd_dplc"] == [None, None, None]  # NaN (not measured) becomes null
    json.dumps(h, allow_nan=False)
    assert "| 16 | 2 | 1.06 |" in findings.ratio_section(h)


def test_the_shared_codec_is_aligned_with_the_ladder_and_missing_rates_are_none():
    results = report.build_results(RATE_FILES, CLASSICAL)
    channels = results["dplc_wpp"]["results"]["code_channels"]
    shared = json.loads(json.dumps(results["dplc_wpp"]))
    keep = [i for i, c in enumerate(channels) if c > 0]  # dplc_shared has no rate-0 codec
    shared["results"] = {k: [v[i] for i in keep] if isinstance(v, list) else v for k, v in shared["results"].items()}
    shared["results"]["mse"] = [m / 2 for m in shared["results"]["mse"]]
    results["dplc_shared_wpp"] = shared
    h = findings.headline(results, findings.findings(results), 0.9)
    assert h["mse_dplc_shared"][0] is None and len(h["mse_dplc_shared"]) == len(channels)
    assert h["mse_ratio_shared_dplc"][1:] == [0.5] * (len(channels) - 1)
    assert h["mse_ratio_shared_dplc"][0] is None


def test_a_ladder_without_rate_0_judges_no_finding_iii():
    """Without rate 0 there is no sFID (G*'s samples are DPLC at C = 0): (iii) is not judged,
    rather than failed on a NaN."""
    results = report.build_results(RATE_FILES, CLASSICAL)
    results["dplc_wpp"]["results"]["sfid_featnet"] = [float("nan")] * len(results["dplc_wpp"]["results"]["rfid_featnet"])
    assert "iii_rfid_at_most_sfid" not in findings.findings(results)
    assert "iii_rfid_at_most_sfid" in findings.findings(report.build_results(RATE_FILES, CLASSICAL))


def test_the_gaussian_section_names_the_kept_starts_only_when_there_were_two():
    row = [0.5, 0.25]
    g = {"config": {"variances": [1.0], "shared": "encoder", "starts": ["scratch", "private"]}, "bits": [0, 1],
         "generator_w2_over_sigma2": 0.01, "lambda_rate_dplc": [None, 10.0], "start_dplc": ["scratch", "private"],
         "start_dplc_shared": ["scratch", "scratch"], "variance_error_dplc": [[0.01], [0.02]],
         "variance_error_dplc_shared": [[0.01], [0.01]]}  # fmt: skip
    for k in ("d_opt", "d_private", "d_common", "d_k", "mse_cae", "mse_dplc", "mse_dplc_shared",
              "gaussian_cae_over_dk", "gaussian_dplc_over_2dk", "gaussian_shared_over_2dk"):  # fmt: skip
        g[k] = row
    text = findings.gaussian_section(g)
    assert "per rate: dplc scratch, private; dplc_shared scratch, scratch." in text
    assert "(scratch, from its seeds; private, continued from the private DPLC) and kept" in text
    g["code_scalars"] = [0, 1]
    g["config"]["per_rate"] = {"1": {"starts": ["private"], "steps": 10}}  # as read back from JSON
    assert "continued from the private DPLC; at 1 bits private only) and kept" in findings.gaussian_section(g)
    g["config"]["per_rate"] = {1: {"steps": 10}}
    assert "only" not in findings.gaussian_section(g)
    g["config"]["starts"] = ["scratch"]
    assert "per rate" not in findings.gaussian_section(g)
    assert "code / D_K" not in text
    g |= {"gaussian_dplc_code_over_dk": [1.0, 1.25], "gaussian_dplc_over_2code": [0.5, 0.2]}
    assert "| 0.25 = 1.25 × 0.2 |" in findings.gaussian_section(g)
