"""The tune stage's objective: validation MSE under an MMD limit calibrated on the null."""

import pytest

from pipelines import tune


def test_mmd_null_spread_shrinks_with_the_sample_size():
    mean_s, sd_s = tune.mmd_null(200, 32, draws=12)
    mean_l, sd_l = tune.mmd_null(1000, 32, draws=12)
    assert sd_l < sd_s / 2  # the unbiased estimate's spread falls roughly like 1/n
    assert abs(mean_s) < 3 * sd_s and abs(mean_l) < 3 * sd_l  # unbiased: centred on 0


def test_mmd_limit_auto_is_four_null_sds_and_numbers_pass_through():
    limit, info = tune.mmd_limit_of({"mmd_limit": "auto"}, 500, 16)
    assert limit == pytest.approx(4 * info["mmd_null_sd"]) and limit > 0
    assert tune.mmd_limit_of({"mmd_limit": 0.02}, 500, 16)[0] == 0.02


def test_objective_penalises_only_above_the_limit():
    assert tune.objective({"val_mse": 0.1, "val_mmd": 0.001}, 0.002, 100.0) == 0.1
    assert tune.objective({"val_mse": 0.1, "val_mmd": 0.003}, 0.002, 100.0) == pytest.approx(0.2)


def test_search_space_rejects_unknown_fields():
    with pytest.raises(ValueError, match="not a MethodConfig field"):
        tune.search_space({"lambda_rat": [1.0, 2.0]})
    assert set(tune.search_space({"lambda_rate": [20.0, 300.0], "n_critic": [1, 5]})) == {"lambda_rate", "n_critic"}
