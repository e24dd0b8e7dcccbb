import pytest
import torch

from dplc.config import NetConfig
from dplc.quantize import Quantizer, centers


@pytest.mark.parametrize("levels,expected", [(2, [-0.5, 0.5]), (4, [-0.75, -0.25, 0.25, 0.75])])
def test_centres_follow_spec(levels, expected):
    assert torch.allclose(centers(levels), torch.tensor(expected))


@pytest.mark.parametrize("levels", [2, 3, 4, 8])
def test_forward_snaps_to_nearest_centre(levels):
    q = Quantizer(levels)
    x = (
        torch.rand(2000, generator=torch.Generator().manual_seed(levels)) * 3 - 1.5
    )  # ties have measure zero
    out = q(x)
    nearest = q.centers[(x.unsqueeze(-1) - q.centers).abs().argmin(-1)]
    assert torch.equal(out, nearest)
    assert set(out.unique().tolist()) <= set(q.centers.tolist())


@pytest.mark.parametrize("levels", [2, 4])
def test_symbols_round_trip(levels):
    q = Quantizer(levels)
    x = torch.rand(1000) * 2 - 1
    sym = q.to_symbols(x)
    assert sym.min() >= 0 and sym.max() < levels
    assert torch.equal(q.from_symbols(sym), q.hard(x))


def test_out_of_range_symbols_rejected():
    with pytest.raises(ValueError, match="symbols must lie"):
        Quantizer(2).from_symbols(torch.tensor([0, 2]))


def test_gradient_flows_through_soft_assignment():
    q = Quantizer(2)
    x = torch.tensor([-0.3, 0.0, 0.4], requires_grad=True)
    q(x).sum().backward()
    soft_grad = torch.autograd.functional.jacobian(lambda v: q.soft(v).sum(), x.detach())
    assert torch.allclose(x.grad, soft_grad)
    assert (x.grad.abs() > 1e-3).all()


@pytest.mark.parametrize("c,bits", [(0, 0.0), (1, 16.0), (4, 64.0), (16, 256.0), (64, 1024.0)])
def test_fixed_length_rate_ladder(c, bits):
    assert NetConfig(code_channels=c, levels=2).bits_per_image == bits
    assert NetConfig(code_channels=c, levels=4).bits_per_image == 2 * bits
