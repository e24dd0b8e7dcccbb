
import pytest
import torch

from dplc import gaussian as G


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



