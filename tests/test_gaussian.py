import math

import pytest
import torch

from dplc import gaussian as G


def test_water_filling_matches_scalar_and_conserves_rate():
    assert G.water_filling((3.0,), 2.0) == pytest.approx(3.0 * 2 ** -4)
    v = (4.0, 1.0, 0.25)
    assert G.water_filling(v, 0.0) == pytest.approx(sum(v) / 3)
    # at a rate where every component is active, D = σ_geo² 2^(−2R/d) per dimension
    r = 12.0
    geo = math.prod(v) ** (1 / 3)
    assert G.water_filling(v, r) == pytest.approx(geo * 2 ** (-2 * r / 3), rel=1e-6)
    # 1 bit: θ = 1, only σ² = 4 is coded (½·log2(4/1) = 1 bit); D = (1 + 1 + 0.25) / 3
    assert G.water_filling(v, 1.0) == pytest.approx((1 + 1 + 0.25) / 3, rel=1e-6)
    assert G.water_filling(v, 1.0) > G.water_filling(v, 2.0) > G.water_filling(v, 4.0)


def test_realism_curves_sit_between_d_and_2d():
    v = (2.0, 1.0, 0.5, 0.25)
    for r in (0.5, 1.0, 4.0, 8.0):
        d, cr, pn = G.water_filling(v, r), G.realism_common_randomness(v, r), G.realism_private_noise(v, r)
        assert d < cr < pn == pytest.approx(2 * d)
    assert G.realism_common_randomness(v, 0.0) == pytest.approx(2 * sum(v) / 4)
    # scalar case: the closed form itself
    assert G.realism_common_randomness((1.0,), 1.0) == pytest.approx(2 * (1 - math.sqrt(0.75)), rel=1e-6)


def test_w2_of_source_samples_is_near_zero_and_detects_shrinkage():
    v = (2.0, 0.5)
    x = G.Source(v, 0).sample(200_000)
    assert G.gaussian_w2_squared(x, v) < 1e-3
    # a decoder that shrinks every component to 81% of its variance: W2² = Σ σ²(1 − 0.9)²
    assert G.gaussian_w2_squared(x * 0.9, v) == pytest.approx(sum(v) * 0.01, rel=0.05)


def test_config_is_strict():
    with pytest.raises(ValueError, match="unknown gaussian settings"):
        G.GaussianConfig.from_dict({"variance": [1.0]})
    with pytest.raises(ValueError, match="positive"):
        G.GaussianConfig(variances=(1.0, -1.0))
    assert G.GaussianConfig.from_dict({"rates": [0, 2], "levels": 4}).bits(2) == 4.0


def test_small_run_codes_and_keeps_the_distribution():
    cfg = G.GaussianConfig(
        variances=(1.0, 0.25), rates=(0, 4), steps=400, generator_steps=400, hidden=32,
        batch_size=256, test_size=20_000, threads=1,
    )  # fmt: skip
    res = G.run(cfg, log=lambda *_: None)
    assert res["bits"] == [0.0, 4.0]
    # CAE at rate 0 decodes the mean: MSE = mean variance; coding 4 bits helps both codecs
    assert res["mse_cae"][0] == pytest.approx(0.625, rel=0.05)
    assert res["mse_cae"][1] < 0.6 * res["mse_cae"][0]
    assert res["mse_dplc"][1] < res["mse_dplc"][0]
    # DPLC at rate 0 samples G*: about twice the variance; its decodes keep the distribution
    assert 1.6 < res["mse_ratio"][0] < 2.4
    assert res["w2_dplc"][1] < 0.05
    # the CAE's decodes do not (they shrink towards conditional means)
    assert res["w2_cae"][1] > res["w2_dplc"][1]
    assert all(r >= d for r, d in zip(res["mse_cae"], res["d_opt"], strict=True))


def test_two_worker_processes_give_the_same_results():
    """Each codec is trained from its own seeds: spreading them over processes changes nothing."""
    kw = dict(variances=(1.0, 0.25), rates=(0, 2), steps=60, generator_steps=60, hidden=16,
              batch_size=64, test_size=2_000, threads=1)  # fmt: skip
    one = G.run(G.GaussianConfig(**kw), log=lambda *_: None)
    two = G.run(G.GaussianConfig(**kw, workers=2), log=lambda *_: None)
    for key in ("mse_cae", "mse_dplc", "w2_dplc", "var_dplc"):
        assert one[key] == two[key], key
    with pytest.raises(ValueError, match="workers"):
        G.GaussianConfig(workers=0)


def test_nan_loss_is_reported():
    cfg = G.GaussianConfig(variances=(1.0,), rates=(1,), steps=5, generator_steps=5, hidden=8, batch_size=16)
    src = G.Source(cfg.variances, 0)
    src.std = torch.tensor([float("nan")])
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        G.train_codec(cfg, 1, src)


def test_lloyd_distortion_of_one_bit_is_the_scalar_optimum():
    """The best 2-cell quantizer of N(0, 1) has centres ±√(2/π): D_2 = 1 − 2/π."""
    assert G.lloyd_distortion((1.0,), 1.0, n=50_000) == pytest.approx(1 - 2 / math.pi, rel=0.02)
    assert G.lloyd_distortion((2.0, 0.5), 0.0) == pytest.approx(1.25)
    v = (2.0, 1.0, 0.5, 0.25)
    d = [G.lloyd_distortion(v, b, n=20_000) for b in (1, 2, 4)]
    assert d[0] > d[1] > d[2] and all(x >= G.water_filling(v, b) for x, b in zip(d, (1, 2, 4), strict=True))


def test_quantile_w2_sees_a_5_percent_variance_shortfall_that_two_samples_do_not_show():
    v = (2.0, 0.5)
    a, b = G.Source(v, 1).sample(100_000), G.Source(v, 2).sample(100_000)
    null = G.quantile_w2_squared(a, b)
    short = G.quantile_w2_squared(a * 0.975, b)  # variance 5% short
    assert all(s > 3 * n for s, n in zip(short, null, strict=True))
    with pytest.raises(ValueError, match="same shape"):
        G.quantile_w2_squared(a, b[:10])
