import math

import pytest
import torch
from _tiny import fixed_batch, tiny_net

from dplc import realism
from dplc.codec import build_codec
from dplc.metrics import latent_realism, latent_realism_draws

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


GAUSS_N, GAUSS_DIM = 200_000, 4
MOMENT_NULL = realism.moment_null(GAUSS_N, GAUSS_DIM)


def _gauss(seed: int, n: int = GAUSS_N) -> torch.Tensor:
    return torch.randn(n, GAUSS_DIM, generator=torch.Generator().manual_seed(seed))


def test_moment_gap_is_unbiased_at_the_prior_and_measures_the_squared_distance():
    """Its mean over prior samples is ~0 (a plug-in ‖S − I‖² would sit at ≈ (d² + d)/n > 0),
    and on a big sample it reads ‖E z‖² + ‖E zzᵀ − I‖²_F: shift 0.1 and scale 0.9 in one
    component give 0.01 + (0.81 + 0.01 − 1)²."""
    values = torch.tensor([float(realism.moment_gap(_gauss(s, 512))) for s in range(200)])
    plug_in = [float((_gauss(s, 512).T @ _gauss(s, 512) / 512 - torch.eye(4)).pow(2).sum()) for s in range(20)]
    assert min(plug_in) > 0 and sum(plug_in) / 20 > 10 * float(values.std()) / math.sqrt(200)
    assert abs(float(values.mean())) < 3 * float(values.std()) / math.sqrt(200)
    z = _gauss(1, 400_000)
    z[:, 0] = 0.9 * z[:, 0] + 0.1
    assert float(realism.moment_gap(z)) == pytest.approx(0.01 + 0.18**2, rel=0.05)


def test_a_two_percent_variance_shortfall_fails_the_moment_check_where_the_mmd_passes_it():
    """The power that ``moment_holdout`` relies on: one component's variance 2% short (scale
    0.99) is > 4 null s.d. of the moment gap at 200,000 points (the statistic is quadratic, so
    its null s.d. falls as 1/n: at 20,000 the same shortfall is within ~2 s.d.), while the IMQ
    MMD at the 2,000 points of the latent check cannot see even 6% (scale 0.97)."""
    scale = torch.tensor([0.99, 1.0, 1.0, 1.0])
    exact = [realism.latent_moment_sd(_gauss(s), MOMENT_NULL) for s in range(5)]
    short = [realism.latent_moment_sd(_gauss(s) * scale, MOMENT_NULL) for s in range(5)]
    assert all(abs(v) <= 3.0 for v in exact), exact
    assert all(v > 4.0 for v in short), short
    mmd_null = realism.mmd_null(2000, GAUSS_DIM)
    wide = torch.tensor([0.97, 1.0, 1.0, 1.0])
    mmd = [realism.latent_mmd_sd(_gauss(s, 2000) * wide, mmd_null, seed=50 + s) for s in range(5)]
    assert max(mmd) < 4.0, mmd
    with pytest.raises(ValueError, match="null spread was measured"):
        realism.latent_moment_sd(_gauss(0, 100), MOMENT_NULL)
    with pytest.raises(ValueError, match="n >= 2"):
        realism.moment_null(1, GAUSS_DIM)


def _scale_gradients(decay: float, theta: float = 0.97, batches: int = 300) -> torch.Tensor:
    """d/dθ of the moment term for z = θ·N(0, I) over successive batches of 512 (the first 100
    left out while the running moments settle)."""
    running = realism.RunningMoments(GAUSS_DIM, decay) if decay > 0 else None
    grads = []
    for s in range(batches):
        t = torch.tensor(theta, requires_grad=True)
        z = t * _gauss(1_000 + s, 512)
        (realism.moment_gap(z) if running is None else running.surrogate(z)).backward()
        grads.append(float(t.grad))
    return torch.tensor(grads[100:])


def test_running_moments_give_the_gap_gradient_with_less_noise():
    """RunningMoments' gradient has the expectation of the gap's, d/dθ d(θ² − 1)² = 4dθ(θ² − 1),
    and a far smaller spread over batches than the one-batch unbiased gap's (decay 0.95: about
    1/40 of the variance of the plug-in factor); with decay → 0 it would not."""
    exact = 4 * GAUSS_DIM * 0.97 * (0.97**2 - 1)
    plain, running = _scale_gradients(0.0), _scale_gradients(0.95)
    assert float(running.mean()) == pytest.approx(exact, rel=0.1)
    assert float(plain.mean()) == pytest.approx(exact, abs=4 * float(plain.std()) / math.sqrt(200))
    assert float(running.std()) < 0.4 * float(plain.std()), (float(running.std()), float(plain.std()))
    with pytest.raises(ValueError, match="decay"):
        realism.RunningMoments(GAUSS_DIM, 1.0)


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


def _settle(epsilon: float, start: float, step: float, checks: int = 80) -> list[float]:
    """λ over ``checks`` dual updates against a modelled check: a reading of 1.5 + 16/λ null s.d.
    (it falls with λ towards a floor no λ removes, as the trained codecs' held-out check does)
    plus one null s.d. of draw-to-draw noise, seeded."""
    gen = torch.Generator().manual_seed(0)
    dual = realism.DualLambda(lam=start, epsilon=epsilon, step_size=step)
    path = []
    for _ in range(checks):
        path.append(dual.update(1.5 + 16.0 / dual.lam + float(torch.randn((), generator=gen))))
    return path


def test_the_dual_settles_where_the_mean_reading_meets_epsilon_despite_noisy_readings():
    """A dual at ε = 2, from λ = 2, with η = 0.1 (the default profile's, 2026-12-06) settles near λ* = 16 / (2 − 1.5) = 32, where
    the expected reading is ε, though each reading spreads by one null s.d.; with ε = 1, below the
    floor, no λ is feasible and λ climbs to its cap (the failure of the old ε = 1)."""
    path = _settle(epsilon=2.0, start=2.0, step=0.1)
    assert 16.0 < sum(path[-30:]) / 30 < 64.0, path[-30:]
    assert max(path) < 200.0
    stuck = _settle(epsilon=1.0, start=2.0, step=0.1, checks=400)
    assert max(stuck) == pytest.approx(1e6) and min(stuck[-50:]) > 1e5


def test_codec_latent_realism_is_measured_on_b():
    codec = build_codec(tiny_net(2), "map").eval()
    score = latent_realism(codec, fixed_batch(64))  # an untrained B is far from N(0, I)
    assert score > 4.0


def test_codec_latent_realism_draws_average_the_single_readings():
    codec = build_codec(tiny_net(2), "map").eval()
    x = fixed_batch(64)
    singles = [latent_realism(codec, x, seed=s) for s in range(3)]
    mean, sd = latent_realism_draws(codec, x, 3)
    assert mean == pytest.approx(sum(singles) / 3)
    assert sd == pytest.approx(float(torch.tensor(singles, dtype=torch.float64).std()))
    assert sd > 0  # the draws differ: each has its own noise and prior sample
    with pytest.raises(ValueError, match="at least one draw"):
        latent_realism_draws(codec, x, 0)
