"""The gradient balance that dplc.loss_scale derives, checked on real gradients."""

from __future__ import annotations

import math

import torch

from dplc import loss_scale, losses


def _grad_norms(loss: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, x_hat)
    return g.flatten(1).norm(dim=1)


def test_sqrt_mse_against_a_unit_critic_matches_the_stated_balance():
    torch.manual_seed(0)
    b, shape = 16, (3, 64, 64)
    x = torch.rand(b, *shape) * 2 - 1
    x_hat = (x + 0.3 * torch.randn_like(x)).requires_grad_(True)
    w = torch.randn(shape)
    w /= w.norm()  # f(x) = <w, x>: whole-image gradient norm 1, as dplc's penalty holds it
    lam = 1.6e-3
    rec = _grad_norms(losses.sqrt_mse(x_hat, x), x_hat)
    adv = _grad_norms(lam * (x_hat * w).flatten(1).sum(1).mean(), x_hat)
    ratio = float((adv / rec).mean())
    assert math.isclose(ratio, loss_scale.sqrt_mse_balance(lam, *shape), rel_tol=0.05)


def test_the_authors_per_pixel_penalty_allows_a_critic_sqrt_hw_times_steeper():
    torch.manual_seed(1)
    c, h, w = 3, 64, 64
    per_pixel = torch.randn(c, h, w)
    per_pixel /= per_pixel.norm(dim=0, keepdim=True)  # every pixel's channel norm is 1
    x = torch.randn(4, c, h, w, requires_grad=True)
    (g,) = torch.autograd.grad((x * per_pixel).sum(), x)
    theirs = ((g.norm(2, dim=1) - 1) ** 2).mean()  # their train.py: norm over dim 1 only
    ours = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean()
    assert float(theirs) < 1e-10  # a critic their penalty accepts as it is ...
    whole = float(g[0].norm())
    assert math.isclose(whole, math.sqrt(h * w), rel_tol=1e-5)  # ... is √(H·W)-Lipschitz
    assert float(ours) > 1000  # and ours rejects it
    # so λ_theirs·f_theirs = λ_theirs·√(H·W)·f_ours: the conversion
    assert math.isclose(loss_scale.whole_image_lambda_adv(2.5e-5, h, w), 2.5e-5 * whole, rel_tol=1e-5)


def test_mse_balance_is_kept_across_image_sizes():
    torch.manual_seed(2)
    ratios = []
    lam32 = 0.01
    for shape, lam in (((1, 32, 32), lam32), ((3, 64, 64), loss_scale.same_balance_mse(lam32, (1, 32, 32), (3, 64, 64)))):
        x = torch.rand(8, *shape) * 2 - 1
        x_hat = (x + 0.2 * torch.randn_like(x)).requires_grad_(True)
        w = torch.randn(shape)
        w /= w.norm()
        rec = _grad_norms(((x_hat - x) ** 2).mean(), x_hat)
        adv = _grad_norms(lam * (x_hat * w).flatten(1).sum(1).mean(), x_hat)
        ratios.append(float((adv / rec).mean()))
    assert math.isclose(ratios[0], ratios[1], rel_tol=0.05)
    # and the copied (unscaled) weight would not keep it
    assert ratios[0] / (ratios[1] * math.sqrt(12288 / 1024)) < 0.5
