import math

import pytest
import torch
from _tiny import fixed_batch, tiny_net

from dplc import realism
from dplc.codec import build_codec
from dplc.metrics import latent_realism

N, DIM = 2000, 32
NULL = realism.mmd_null(N, DIM)


def _prior(seed: int) -> torch.Tensor:
    return torch.randn(N, DIM, generator=torch.Generator().manual_seed(seed))


def test_exact_prior_samples_pass_the_realism_limit():
    scores = [realism.latent_mmd_sd(_prior(s), NULL, seed=100 + s) for s in range(5)]
    assert all(s <= 2.0 for s in scores), scores


def test_latents_shrunk_by_5_percent_fail_it():
    """The power the constraint relies on: a 5% scale error is many null s.d. at 2,000 points."""
    scores = [realism.latent_mmd_sd(0.95 * _prior(s), NULL, seed=100 + s) for s in range(3)]
    assert all(s > 4.0 for s in scores), scores


def test_a_decoder_that_ignores_its_noise_fails_it():
    """B ignoring its noise at a low rate: every latent is one of 2⁸ points (an 8-bit code)."""
    atoms = torch.randn(256, DIM, generator=torch.Generator().manual_seed(3))
    pick = torch.randint(0, 256, (N,), generator=torch.Generator().manual_seed(4))
    assert realism.latent_mmd_sd(atoms[pick], NULL, seed=5) > 10.0


def test_null_spread_must_match_the_sample():
    with pytest.raises(ValueError, match="null spread was measured"):
        realism.latent_mmd_sd(torch.randn(10, DIM), NULL)
    with pytest.raises(ValueError, match="n >= 2"):
        realism.mmd_null(1, DIM)


def test_dual_ascent_raises_lambda_while_violated_and_lowers_it_while_slack():
    dual = realism.DualLambda(lam=40.0, epsilon=1.0, step_size=0.25)
    for _ in range(4):
        dual.update(10.0)  # clipped to +4 s.d. per update
    assert dual.lam == pytest.approx(40.0 * math.exp(4.0))
    for _ in range(4):
        dual.update(-3.0)
    assert dual.lam == pytest.approx(40.0)
    state = dual.state_dict()
    other = realism.DualLambda(lam=1.0)
    other.load_state_dict(state)
    assert other.lam == dual.lam and other.updates == 8
    with pytest.raises(ValueError, match="not finite"):
        dual.update(float("nan"))


def test_codec_latent_realism_is_measured_on_b():
    codec = build_codec(tiny_net(2), "map").eval()
    score = latent_realism(codec, fixed_batch(64))  # an untrained B is far from N(0, I)
    assert score > 4.0
