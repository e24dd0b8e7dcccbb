"""dplc.gaussian_bounds: the closed-form and one-shot limits of the Gaussian source."""

import math

import pytest
import torch

from dplc import gaussian_bounds as G
from dplc.gaussian import Source


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
    x = Source(v, 0).sample(200_000)
    assert G.gaussian_w2_squared(x, v) < 1e-3
    # a decoder that shrinks every component to 81% of its variance: W2² = Σ σ²(1 − 0.9)²
    assert G.gaussian_w2_squared(x * 0.9, v) == pytest.approx(sum(v) * 0.01, rel=0.05)

def test_lloyd_distortion_of_one_bit_is_the_scalar_optimum():
    """The best 2-cell quantizer of N(0, 1) has centres ±√(2/π): D_2 = 1 − 2/π."""
    assert G.lloyd_distortion((1.0,), 1.0, n=50_000) == pytest.approx(1 - 2 / math.pi, rel=0.02)
    assert G.lloyd_distortion((2.0, 0.5), 0.0) == pytest.approx(1.25)
    v = (2.0, 1.0, 0.5, 0.25)
    d = [G.lloyd_distortion(v, b, n=20_000) for b in (1, 2, 4)]
    assert d[0] > d[1] > d[2] and all(x >= G.water_filling(v, b) for x, b in zip(d, (1, 2, 4), strict=True))

def test_quantile_w2_sees_a_5_percent_variance_shortfall_that_two_samples_do_not_show():
    v = (2.0, 0.5)
    a, b = Source(v, 1).sample(100_000), Source(v, 2).sample(100_000)
    null = G.quantile_w2_squared(a, b)
    short = G.quantile_w2_squared(a * 0.975, b)  # variance 5% short
    assert all(s > 3 * n for s, n in zip(short, null, strict=True))
    with pytest.raises(ValueError, match="same shape"):
        G.quantile_w2_squared(a, b[:10])


def test_code_mmse_of_the_sign_code_is_the_one_bit_lloyd_error():
    """The sign of N(0, 1) is the best 1-bit code: E Var(X | sign X) = 1 − 2/π = D_2."""
    x = Source((1.0,), 3).sample(400_000)
    assert G.code_mmse(x, (x > 0).long()) == pytest.approx(1 - 2 / math.pi, rel=0.01)
    # power: a code that ignores x leaves all of X's variance; a finer code less
    assert G.code_mmse(x, (Source((1.0,), 4).sample(400_000) > 0).long()) == pytest.approx(1.0, rel=0.01)
    four = torch.bucketize(x[:, 0], torch.tensor([-0.9816, 0.0, 0.9816])).unsqueeze(1)  # Lloyd–Max, 4 cells
    assert G.code_mmse(x, four) == pytest.approx(0.1175, rel=0.02)


def test_code_mmse_of_rate_zero_is_the_variance_and_it_checks_its_shapes():
    x = Source((2.0, 0.5), 5).sample(200_000)
    assert G.code_mmse(x, x.new_zeros(x.shape[0], 0)) == pytest.approx(1.25, rel=0.01)
    with pytest.raises(ValueError, match="one code per point"):
        G.code_mmse(x, torch.zeros(10, 1))


def test_the_transport_floor_of_a_code_lies_between_its_bounds_and_finds_the_transport_cells():
    """A threshold code of N(0, 1) has intervals for cells, the transport cells of its means, so its
    floor is posterior sampling's 2·E Var(X | J) although its nearest-mean error (ψ = 0, the
    D_K-style bound) is lower: the dual ascent must move the Laguerre cells to find it. A code
    whose cells are not intervals, J = [x > 0] xor [|x| > 1], has means ±m with
    m = 2(φ(0) − 2φ(1)) and floor 2 − 2m√(2/π) (the monotone coupling), below 2·E Var(X | J)."""
    x = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0))
    thr = (x > 1).long()
    means = torch.stack([x[thr[:, 0] == j].mean() for j in (0, 1)])
    nearest = float((x - means.view(1, 2)).pow(2).min(1).values.mean())
    assert nearest + G.code_mmse(x, thr) < 0.97 * 2 * G.code_mmse(x, thr)
    assert G.transport_floor(x, thr) == pytest.approx(2 * G.code_mmse(x, thr), rel=1e-3)
    assert G.transport_floor(x, thr, steps=1) == pytest.approx(nearest + G.code_mmse(x, thr), rel=2e-3)
    phi = [math.exp(-t * t / 2) / math.sqrt(2 * math.pi) for t in (0.0, 1.0)]
    m = abs(2 * (phi[0] - 2 * phi[1]))
    xor = ((x > 0) ^ (x.abs() > 1)).long()
    assert G.transport_floor(x, xor) == pytest.approx(2 - 2 * m * math.sqrt(2 / math.pi), rel=2e-3)
    assert G.transport_floor(x, xor) < 0.9 * 2 * G.code_mmse(x, xor)
    with pytest.raises(ValueError, match="one code per point"):
        G.transport_floor(x, thr[:10])


def test_lloyds_code_has_the_floor_2_dk():
    """Lloyd's cells are the Voronoi cells of their means, hence their transport cells: the
    floor of Lloyd's own code is 2·D_K (the bound no private code beats)."""
    x = torch.randn(50_000, 2, generator=torch.Generator().manual_seed(1)) * torch.tensor([1.0, 0.5])
    centres = G.lloyd(x, x[:8].clone(), iters=200)
    codes = torch.cdist(x, centres).argmin(1, keepdim=True)
    assert G.transport_floor(x, codes) == pytest.approx(2 * G.code_mmse(x, codes), rel=5e-3)
