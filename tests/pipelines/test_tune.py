"""The tune stage: a seeded, reproducible search scored by validation MSE under a realism limit."""

import pytest
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

from dplc import realism
from pipelines import tune


def test_mmd_null_spread_shrinks_with_the_sample_size():
    small, large = realism.mmd_null(200, 32, draws=12), realism.mmd_null(1000, 32, draws=12)
    assert large.sd < small.sd / 2  # the unbiased estimate's spread falls roughly like 1/n
    assert abs(small.mean) < 3 * small.sd and abs(large.mean) < 3 * large.sd  # centred on 0


def test_objective_penalises_only_above_the_limit():
    assert tune.objective({"val_mse": 0.1, "val_mmd_sd": 1.5}, 2.0, 1.0) == 0.1
    assert tune.objective({"val_mse": 0.1, "val_mmd_sd": 4.0}, 2.0, 1.0) == pytest.approx(0.3)


def test_search_space_rejects_unknown_fields():
    with pytest.raises(ValueError, match="not a MethodConfig field"):
        tune.search_space({"lambda_rat": [1.0, 2.0]})
    assert set(tune.search_space({"lr": [1e-4, 1e-3], "n_critic": [1, 5]})) == {"lr", "n_critic"}


def test_scheduler_is_fifo_unless_asked():
    assert isinstance(tune.scheduler({}), FIFOScheduler)
    t = {"scheduler": "asha", "steps": 100, "grace_steps": 10}
    assert isinstance(tune.scheduler(t), ASHAScheduler)
    with pytest.raises(ValueError, match="fifo"):
        tune.scheduler({"scheduler": "hyperband"})
