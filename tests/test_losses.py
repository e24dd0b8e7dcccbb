import pytest
import torch
from torch import nn

from dplc import losses


def test_mmd_near_zero_for_one_distribution_and_positive_for_shifted():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(256, 16, generator=g), torch.randn(256, 16, generator=g)
    same = float(losses.mmd_imq(a, b))
    shifted = float(losses.mmd_imq(a, b + 0.5))
    scaled = float(losses.mmd_imq(a, 2.0 * b))
    assert abs(same) < 0.01
    assert shifted > 10 * max(abs(same), 1e-3)
    assert scaled > 10 * max(abs(same), 1e-3)


def test_mmd_is_unbiased_around_zero():
    g = torch.Generator().manual_seed(2)
    vals = [
        float(losses.mmd_imq(torch.randn(32, 4, generator=g), torch.randn(32, 4, generator=g)))
        for _ in range(200)
    ]
    mean = sum(vals) / len(vals)
    spread = (sum((v - mean) ** 2 for v in vals) / len(vals)) ** 0.5
    assert abs(mean) < 3 * spread / len(vals) ** 0.5 + 1e-4
    assert min(vals) < 0  # an unbiased estimator takes negative values


def test_mmd_needs_two_samples():
    with pytest.raises(ValueError):
        losses.mmd_imq(torch.randn(1, 3), torch.randn(5, 3))


def test_gradient_penalty_of_linear_critic_is_known():
    lin = nn.Linear(12, 1, bias=True)
    with torch.no_grad():
        lin.weight.copy_(torch.arange(12.0).reshape(1, 12) / 10)
    critic = lambda x: lin(x.flatten(1)).squeeze(1)  # noqa: E731
    real, fake = torch.randn(8, 3, 2, 2), torch.randn(8, 3, 2, 2)
    expected = (lin.weight.norm() - 1.0) ** 2
    assert torch.allclose(losses.gradient_penalty(critic, real, fake), expected, atol=1e-5)


def test_gradient_penalty_zero_for_unit_norm_linear_critic():
    w = torch.randn(10)
    w = w / w.norm()
    critic = lambda x: x.flatten(1) @ w  # noqa: E731
    gp = losses.gradient_penalty(critic, torch.randn(4, 10), torch.randn(4, 10))
    assert float(gp) < 1e-10


def test_sqrt_mse_and_wgan_terms():
    x = torch.zeros(2, 1, 4, 4)
    y = torch.full((2, 1, 4, 4), 0.5)
    assert torch.isclose(losses.sqrt_mse(y, x), torch.tensor(0.5), atol=1e-4)
    assert torch.isclose(losses.mse(y, x), torch.tensor(0.25))
    assert float(losses.critic_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0]))) == -2.0
    assert float(losses.generator_loss(torch.tensor([1.0, 3.0]))) == -2.0


def _fit_constant(loss) -> float:
    """Fit one constant image c to a batch by gradient descent on ``loss(c, batch)``."""
    x = torch.tensor([0.0, 0.0, 0.0, 4.0]).reshape(4, 1, 1, 1).expand(4, 1, 2, 2)
    c = torch.zeros(1, 1, 1, 1, requires_grad=True)
    opt = torch.optim.Adam([c], lr=0.05)
    for _ in range(2000):
        opt.zero_grad()
        loss(c.expand_as(x), x).backward()
        opt.step()
    return float(c)


def test_sqrt_mse_minimiser_is_the_mse_minimiser():
    """√(batch MSE) is minimised by the mean (1.0), like MSE; the mean of per-image roots, the
    former term, is minimised by the median (0.0) on this batch of three 0-images and one 4."""
    per_image = lambda a, b: ((a - b) ** 2).flatten(1).mean(1).add(1e-12).sqrt().mean()  # noqa: E731
    assert abs(_fit_constant(losses.mse) - 1.0) < 0.02
    assert abs(_fit_constant(losses.sqrt_mse) - 1.0) < 0.02
    assert abs(_fit_constant(per_image)) < 0.1


def test_grouped_mmd_does_not_penalise_a_confident_decoder():
    """Four noise draws of one code that decode to the same latent: the marginal is exact, so
    the grouped estimate sits in its null range while the plain one reads the repeats as clumps."""
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(256, 16, generator=g).repeat(4, 1)
    prior = torch.randn(1024, 16, generator=g)
    assert float(losses.mmd_imq(latents, prior)) > 10 * abs(float(losses.mmd_imq(latents, prior, groups=4)))
    with pytest.raises(ValueError, match="multiple of groups"):
        losses.mmd_imq(torch.randn(10, 2), torch.randn(10, 2), groups=3)


@pytest.mark.parametrize("groups", [1, 4])
def test_mmd_without_autograd_is_bit_identical_to_the_autograd_path(groups):
    """The in-place path (no autograd: the realism checks, the null spread) gives the very same
    float as the differentiable one, so a speed-up there changes no result."""
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(256, 16, generator=g), 1.2 * torch.randn(256, 16, generator=g)
    with torch.no_grad():
        fast = losses.mmd_imq(x, y, groups=groups)
    slow = losses.mmd_imq(x.clone().requires_grad_(True), y, groups=groups)
    assert fast.item() == slow.item()
    assert fast.item() != losses.mmd_imq(x, y * 1.0001, groups=groups).item()  # it does see y
