"""dplc.polar_dither: exact realism of the polar code, its messages, its design below 2·D_K."""

import math

import pytest
import torch

from dplc import polar_dither as P
from dplc.gaussian_bounds import lloyd_distortion

VARIANCES = (2.0, 1.0, 0.5, 0.25)
LAYOUT = (P.Pair((0, 1), (3, 5, 2)), P.Pair((2, 3), (1,)))
N = 100_000
KS_999 = 1.95 / math.sqrt(N)
"""The 99.9% quantile of the KS distance between N exact samples and their law."""


def _ks_uniform(t: torch.Tensor) -> float:
    s = t.double().sort().values
    i = torch.arange(1, s.numel() + 1, dtype=torch.float64)
    return float(torch.maximum(i / s.numel() - s, s - (i - 1) / s.numel()).max())


def _draw(n: int, seed: int, groups: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen, dtype=torch.float64) * torch.tensor(VARIANCES).sqrt()
    return x, torch.rand(n, 2 * groups, generator=gen, dtype=torch.float64)


def _laws(x_hat: torch.Tensor) -> list[float]:
    """KS distances of what must be uniform if the pair (0, 1) decodes to N(0, diag(2, 1)):
    each coordinate's CDF, the whitened radius's CDF and the angle; and, for independence of
    radius and angle, the angle among the points of larger radius only."""
    a, b = x_hat[:, 0] / math.sqrt(2.0), x_hat[:, 1]
    v = -torch.expm1(-(a * a + b * b) / 2)
    theta = torch.remainder(torch.atan2(b, a) / (2 * math.pi), 1.0)
    return [_ks_uniform(torch.special.ndtr(a)), _ks_uniform(torch.special.ndtr(b)), _ks_uniform(v),
            _ks_uniform(theta), _ks_uniform(theta[v > 0.5])]  # fmt: skip


def test_messages_cover_the_layout_and_round_trip():
    x, u = _draw(N, 0)
    m = P.encode(x, VARIANCES, LAYOUT, u)
    assert P.messages(LAYOUT) == (3 + 5 + 2) * 1
    assert sorted(m.unique().tolist()) == list(range(P.messages(LAYOUT)))
    assert torch.equal(P.decode(m, VARIANCES, LAYOUT, u), P.decode(m.clone(), VARIANCES, LAYOUT, u.clone()))


def test_decodes_are_exactly_gaussian_with_or_without_the_right_dither():
    x, u = _draw(N, 1)
    m = P.encode(x, VARIANCES, LAYOUT, u)
    x_hat = P.decode(m, VARIANCES, LAYOUT, u)
    assert max(_laws(x_hat)) < KS_999
    # an independent dither at the decoder still gives exact samples (of their cells) ...
    _, other = _draw(N, 2)
    wrong = P.decode(m, VARIANCES, LAYOUT, other)
    assert max(_laws(wrong)) < KS_999
    # ... at a higher error
    assert float((wrong - x).pow(2).mean()) > 1.2 * float((x_hat - x).pow(2).mean())


def test_the_realism_check_has_power():
    """The same check fails a decoder without the angle's dither (cell centres) and one whose
    decodes are shrunk by 5%."""
    x, u = _draw(N, 3)
    m = P.encode(x, VARIANCES, LAYOUT, u)
    centred = u.clone()
    centred[:, 1] = 0.5
    assert _laws(P.decode(m, VARIANCES, LAYOUT, centred))[3] > 3 * KS_999
    assert max(_laws(0.95 * P.decode(m, VARIANCES, LAYOUT, u))) > 3 * KS_999


@pytest.mark.parametrize("bits", [1.0, 2.0, 4.0])
def test_the_designed_code_is_below_the_private_noise_bound(bits):
    """2·D_K bounds every K-cell code with exact realism and private noise; with the dither
    shared the designed code is under it (on fresh vectors, not the design's)."""
    layout = P.design(VARIANCES, bits)
    assert P.messages(layout) <= 2**bits
    x, _ = _draw(200_000, 4)
    u = torch.rand(200_000, 2 * len(layout), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    mse = float((P.decode(P.encode(x, VARIANCES, layout, u), VARIANCES, layout, u) - x).pow(2).mean())
    assert mse < 0.97 * 2 * lloyd_distortion(VARIANCES, bits, seed=5)


def test_design_at_rate_zero_draws_independent_samples():
    layout = P.design(VARIANCES, 0.0)
    assert P.messages(layout) == 1
    x, _ = _draw(N, 6)
    u = torch.rand(N, 2 * len(layout), generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    mse = float((P.decode(P.encode(x, VARIANCES, layout, u), VARIANCES, layout, u) - x).pow(2).mean())
    assert mse == pytest.approx(2 * sum(VARIANCES) / 4, rel=0.02)


def test_bad_input_is_refused():
    x, u = _draw(8, 8)
    with pytest.raises(ValueError, match="each of the 4 components once"):
        P.encode(x, VARIANCES, (P.Pair((0, 1), (2,)), P.Single(2, 2)), u)
    with pytest.raises(ValueError, match="two uniforms per group"):
        P.encode(x, VARIANCES, LAYOUT, u[:, :3])
    with pytest.raises(ValueError, match="out of range"):
        P.decode(torch.full((8,), 10), VARIANCES, LAYOUT, u)
    huge = tuple(P.Pair((2 * g, 2 * g + 1), (2**32,)) for g in range(2))
    with pytest.raises(ValueError, match="code its groups apart"):
        P.encode(x, VARIANCES, huge, u)
    with pytest.raises(ValueError, match="at least one cell"):
        P.Pair((0, 1), (2, 0))
    with pytest.raises(ValueError, match="0 to 12 bits"):
        P.design(VARIANCES, 16.0)
