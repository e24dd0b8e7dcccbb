"""How an adversarial weight carries over between gradient-penalty normalisations and image
sizes (Tschannen et al. 2018's λ_adv; the derivation is in ``docs/scale.md``).

The generator-side objective of ``wpp`` is √(batch MSE) − λ_adv·mean f(x̂) (and ``gc``'s is
MSE + λ_gan·GAN term). What balances the two terms is the ratio of their gradients with respect
to one decoded image x̂ of N = C·H·W values, in a batch of B:

* √(batch MSE): ‖∂/∂x̂‖ = ‖x̂ − x‖ / (B·N·√MSE) ≈ 1 / (B·√N) (every image near the batch MSE);
* MSE: ‖∂/∂x̂‖ = 2‖x̂ − x‖ / (B·N) ≈ 2√MSE / (B·√N);
* λ·mean f: ‖∂/∂x̂‖ = λ·‖∇f‖ / B, and ‖∇f‖ is what the gradient penalty holds near 1.

dplc's penalty holds the whole-image norm ‖∇f‖ at 1 (Gulrajani et al. 2017, Alg. 1). The
authors' code takes ``gradients.norm(2, dim=1)`` of a B×C×H×W tensor, a norm over channels at
each pixel, and pulls each of the H·W norms to 1, so their critic's whole-image gradient norm is
about √(H·W). Equal balance therefore needs λ_ours = λ_theirs·√(H·W).

>>> round(whole_image_lambda_adv(2.5e-5, 64, 64), 6)   # the authors' CelebA/LSUN weight
0.0016
>>> round(sqrt_mse_balance(0.0016, 3, 64, 64), 3)       # adversarial / reconstruction gradient
0.177
>>> round(same_balance_mse(0.01, (1, 32, 32), (3, 64, 64)), 5)
0.00289
"""

from __future__ import annotations

import math


def whole_image_lambda_adv(per_pixel_lambda: float, height: int, width: int) -> float:
    """λ_adv under a whole-image gradient penalty equal in effect to ``per_pixel_lambda`` under
    the authors' per-pixel (channel-norm) penalty: λ·√(H·W)."""
    return per_pixel_lambda * math.sqrt(height * width)


def sqrt_mse_balance(lambda_adv: float, channels: int, height: int, width: int) -> float:
    """Per-image gradient ratio of λ_adv·f (whole-image 1-Lipschitz f) to √(batch MSE):
    λ_adv·√(C·H·W)."""
    return lambda_adv * math.sqrt(channels * height * width)


def same_balance_mse(lam: float, shape: tuple[int, int, int], new_shape: tuple[int, int, int]) -> float:
    """The weight of a GAN term beside an MSE term that keeps the gradient ratio λ·√N / (2√MSE)
    when images go from ``shape`` to ``new_shape`` (C, H, W) at equal per-value MSE:
    λ·√(N / N')."""
    return lam * math.sqrt(math.prod(shape) / math.prod(new_shape))
