"""dplc.cdf_dither: the shared-randomness reference code's exact realism, its error, its rate split."""

import math

import pytest
import torch

from dplc import cdf_dither as D
from dplc.gaussian_bounds import lloyd_distortion

VARIANCES = (2.0, 1.0, 0.5, 0.25)
LEVELS = (7, 4, 2, 1)


def _ks(x: torch.Tensor, var: float) -> float:
    """Kolmogorov–Smirnov distance of the sample ``x`` to N(0, var)."""
    s = x.double().sort().values
    n = s.numel()
    cdf = torch.special.ndtr(s / math.sqrt(var))
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(torch.maximum(i / n - cdf, cdf - (i - 1) / n).max())


def _draw(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen, dtype=torch.float64) * torch.tensor(VARIANCES).sqrt()
    return x, torch.rand(n, 4, generator=gen, dtype=torch.float64)


N = 100_000
KS_999 = 1.95 / math.sqrt(N)
"""The 99.9% quantile of the KS distance between N exact samples and their law."""


def test_decodes_follow_the_source_exactly_and_only_with_the_shared_dither():
    x, u = _draw(N, 0)
    j = D.encode(x, VARIANCES, LEVELS, u)
    assert int(j.min()) >= 0 and all(int(j[:, i].max()) <= LEVELS[i] - 1 for i in range(4))
    x_hat = D.decode(j, VARIANCES, LEVELS, u)
    for i, v in enumerate(VARIANCES):
        assert _ks(x_hat[:, i], v) < KS_999, i
    # power: the same symbols clipped into [0, 1] instead of reflected, or decoded at their
    # cells' centres without the dither, are visibly not N(0, σ²) on the coded components
    k = torch.tensor([lv - 1 for lv in LEVELS], dtype=torch.float64)
    sd = torch.tensor(VARIANCES, dtype=torch.float64).sqrt()
    clipped = torch.special.ndtri(((j.double() + 0.5 - u) / k.clamp_min(1)).clamp(1e-12, 1 - 1e-12)) * sd
    centres = torch.special.ndtri(D.reflect(j.double() / k.clamp_min(1)).clamp(1e-3, 1 - 1e-3)) * sd
    for i in range(3):
        assert _ks(clipped[:, i], VARIANCES[i]) > 3 * KS_999, i
        assert _ks(centres[:, i], VARIANCES[i]) > 3 * KS_999, i
    # decoded with an independent draw of the dither, each component is still exactly
    # N(0, σ²) (a private-noise sample of its cell) ...
    _, other = _draw(N, 1)
    wrong = D.decode(j, VARIANCES, LEVELS, other)
    for i, v in enumerate(VARIANCES):
        assert _ks(wrong[:, i], v) < KS_999, i
    # ... but with more error on every coded component
    err = (x_hat - x).pow(2).mean(0)
    err_wrong = (wrong - x).pow(2).mean(0)
    assert bool((err_wrong[:3] > 1.2 * err[:3]).all())


def test_scalar_mse_matches_a_simulation():
    x, u = _draw(N, 2)
    for lv in (2, 4, 8):
        levels = (lv, lv, lv, lv)
        x_hat = D.decode(D.encode(x, VARIANCES, levels, u), VARIANCES, levels, u)
        per_unit = ((x_hat - x).pow(2).mean(0) / torch.tensor(VARIANCES)).mean()
        assert float(per_unit) == pytest.approx(D.scalar_mse(lv), rel=0.02)
    assert D.scalar_mse(1) == 2.0
    assert D.scalar_mse(2) > D.scalar_mse(3) > D.scalar_mse(8) > D.scalar_mse(32)


def test_four_symbols_cross_the_private_noise_bound_two_do_not():
    """2·D_L is the least MSE of any L-cell code with exact realism and private noise; the
    dithered code, with shared noise, is below it at L = 4 and above it at L = 2."""
    assert D.scalar_mse(4) < 0.9 * 2 * lloyd_distortion((1.0,), 2.0)
    assert D.scalar_mse(2) > 1.1 * 2 * lloyd_distortion((1.0,), 1.0)


def test_allocation_spends_the_message_on_the_largest_variances():
    assert D.allocate(VARIANCES, 0.0) == (1, 1, 1, 1)
    assert D.allocate(VARIANCES, 1.0) == (2, 1, 1, 1)
    for bits in (2.0, 4.0, 8.0):
        levels = D.allocate(VARIANCES, bits)
        assert math.prod(levels) <= 2**bits
        assert list(levels) == sorted(levels, reverse=True)
        if bits > 4:  # the check below enumerates every split: thousands at 8 bits
            continue
        # no other split of the same message does better
        cost = sum(v * D.scalar_mse(lv) for v, lv in zip(VARIANCES, levels, strict=True))
        for t in D._tuples(4, int(2**bits), int(2**bits)):
            assert cost <= sum(v * D.scalar_mse(lv) for v, lv in zip(VARIANCES, t, strict=True)) + 1e-12
    assert D.allocate((0.25, 2.0), 2.0) == (1, 4)


def test_bad_input_is_refused():
    x, u = _draw(8, 3)
    with pytest.raises(ValueError, match="symbol counts"):
        D.encode(x, VARIANCES, (2, 2), u)
    with pytest.raises(ValueError, match="dither must match"):
        D.encode(x, VARIANCES, LEVELS, u[:, :2])
    with pytest.raises(ValueError, match="at least one symbol"):
        D.encode(x, VARIANCES, (0, 1, 1, 1), u)
    j = D.encode(x, VARIANCES, LEVELS, u)
    j[0, 1] = LEVELS[1]
    with pytest.raises(ValueError, match="out of range"):
        D.decode(j, VARIANCES, LEVELS, u)
