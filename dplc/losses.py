"""Loss terms: WGAN-GP (dual), MMD with the inverse multiquadric kernel (primal), sqrt-MSE.

* WGAN-GP: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Alg. 1.
* MMD: Tolstikhin et al. 2018, "Wasserstein Auto-Encoders", Alg. 2 (WAE-MMD), with the
  inverse multiquadric kernel k(a, b) = C / (C + ||a - b||²) summed over
  C = 2 · m · s, s ∈ {0.1, 0.2, 0.5, 1, 2, 5, 10} (the authors' code), unbiased.
* sqrt-MSE: the reconstruction term of Tschannen et al. 2018 (Wasserstein++), the square root
  of the batch MSE as in the authors' code (``torch.sqrt(nn.MSELoss()(G(E(x)), x))``): a monotone
  function of the MSE, so its minimiser is the MSE minimiser.

>>> import torch
>>> _ = torch.manual_seed(0)
>>> a, b = torch.randn(200, 8), torch.randn(200, 8)
>>> bool(abs(mmd_imq(a, b)) < 0.05)
True
>>> bool(mmd_imq(a, b + 1.0) > 0.2)
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

DEFAULT_MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def sqrt_mse(x_hat: Tensor, x: Tensor, eps: float = 1e-12) -> Tensor:
    """sqrt(mean over the batch and pixels of (x̂ - x)²): the Wasserstein++ reconstruction term.

    The square root is of the *batch* MSE (the authors' code), not a mean of per-image roots,
    which would minimise E‖x − x̂‖ instead of E‖x − x̂‖².

    >>> import torch
    >>> round(float(sqrt_mse(torch.zeros(2, 4), torch.tensor([[0.0] * 4, [2.0] * 4]))), 4)
    1.4142
    """
    return torch.sqrt(((x_hat.float() - x.float()) ** 2).mean() + eps)


def mse(x_hat: Tensor, x: Tensor) -> Tensor:
    """Plain mean squared error over all pixels."""
    return ((x_hat.float() - x.float()) ** 2).mean()


def mmd_imq(
    x: Tensor, y: Tensor, scales: Sequence[float] = DEFAULT_MMD_SCALES, groups: int = 1
) -> Tensor:
    """Unbiased MMD² between samples ``x`` (n, m) and ``y`` (n', m), IMQ kernel sum (WAE Alg. 2).

    The kernel is summed over C = 2 · m · s for s in ``scales`` (prior variance 1). Within-sample
    terms exclude the diagonal, so the estimate is unbiased and can be slightly negative.

    ``groups`` > 1 says ``x`` is ``groups`` stacked copies of one batch (row i, i + n/groups, …
    share a source: the same code decoded with different noise). Pairs within a source are then
    left out of the x–x term, since the marginal's E k(x, x') is over independent draws: keeping
    them would penalise a decoder for being confident about one code.
    """
    x = x.flatten(1).float()
    y = y.flatten(1).float()
    n, m = x.shape
    n2 = y.shape[0]
    if n < 2 or n2 < 2:
        raise ValueError("MMD needs at least two samples on each side")
    dxx = torch.cdist(x, x).pow(2)
    dyy = torch.cdist(y, y).pow(2)
    dxy = torch.cdist(x, y).pow(2)
    if groups < 1 or n % groups:
        raise ValueError(f"x has {n} rows, not a multiple of groups={groups}")
    source = torch.arange(n, device=x.device) % (n // groups)
    off_x = (source[:, None] != source[None, :]).float()
    pairs_x = float(off_x.sum())
    if pairs_x < 1:
        raise ValueError("MMD needs at least two independent sources in x")
    off_y = 1.0 - torch.eye(n2, device=y.device)
    total = x.new_zeros(())
    for s in scales:
        c = 2.0 * m * s
        kxx = _imq_sum(dxx, c, off_x, diagonal_only=groups == 1) / pairs_x
        kyy = _imq_sum(dyy, c, off_y, diagonal_only=True) / (n2 * (n2 - 1))
        kxy = _imq_sum(dxy, c, None) / (n * n2)
        total = total + kxx + kyy - 2.0 * kxy
    return total


def _imq_sum(d2: Tensor, c: float, mask: Tensor | None, diagonal_only: bool = False) -> Tensor:
    """Σ mask · C / (C + d²) over a matrix of squared distances (``mask`` None: every entry;
    ``diagonal_only``: the mask only zeroes the diagonal).

    Without autograd it is computed in place on one buffer, entry for entry the same floats as
    the expression used with autograd (``c / t`` is ``t.reciprocal() * c`` in torch, and a 0/1
    mask multiplies exactly), so the result is bit-identical while one buffer is allocated
    instead of four."""
    if d2.requires_grad and torch.is_grad_enabled():
        k = c / (c + d2)
        return (k if mask is None else k * mask).sum()
    k = torch.add(d2, c).reciprocal_().mul_(c)
    if mask is not None:
        k.fill_diagonal_(0.0) if diagonal_only else k.mul_(mask)
    return k.sum()


def sliced_w2_to_normal(x: Tensor, projections: int = 64, generator: torch.Generator | None = None) -> Tensor:
    """Sliced W₂² between the sample ``x`` (n, m) and N(0, I), against exact normal quantiles.

    Each of ``projections`` random unit directions θ maps N(0, I) to N(0, 1) exactly, so the
    W₂² of the projected sample is the mean squared gap between its order statistics and the
    normal quantiles Φ⁻¹((i − ½)/n) (Rabin et al. 2011, "Wasserstein barycenter and its
    application to texture mixing"; Deshpande et al. 2018). No prior sample enters, so a scale
    error shows with little noise: latents shrunk by 5% give ≈ 0.05² per direction.
    """
    x = x.flatten(1).float()
    n, m = x.shape
    theta = torch.randn(m, projections, generator=generator).to(x.device)  # a CPU draw, as on every device
    theta = theta / theta.norm(dim=0, keepdim=True)
    proj = torch.sort(x @ theta, dim=0).values
    t = (torch.arange(n, device=x.device, dtype=torch.float64) + 0.5) / n
    q = (torch.special.ndtri(t)).float().unsqueeze(1)
    return (proj - q).pow(2).mean()


def critic_loss(f_real: Tensor, f_fake: Tensor) -> Tensor:
    """WGAN critic loss E[f(fake)] - E[f(real)] (minimised by the critic)."""
    return f_fake.float().mean() - f_real.float().mean()


def generator_loss(f_fake: Tensor) -> Tensor:
    """WGAN generator loss -E[f(fake)]."""
    return -f_fake.float().mean()


def gradient_penalty(
    critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor, alpha: Tensor | None = None
) -> Tensor:
    """E[(||∇f(x̃)||₂ - 1)²] on x̃ = α·real + (1-α)·fake, α ~ U[0,1] per sample (Gulrajani Alg. 1).

    α is drawn from torch's CPU generator and moved to the batch's device, as every training
    draw is (:class:`dplc.method.Method`), so a GPU run sees the CPU run's α."""
    if alpha is None:
        alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1))).to(real.device)
    x = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x)
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    norm = grad.flatten(1).float().norm(dim=1)
    return ((norm - 1.0) ** 2).mean()
