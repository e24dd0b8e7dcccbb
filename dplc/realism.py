"""Realism as a measured constraint: the latent MMD in null standard deviations, and a dual λ.

DPLC asks B's latents to follow the prior, B(E(X), U) ~ N(0, I) (Tschannen et al. 2018, §3),
because then G*(B(·)) decodes follow G*'s distribution at every rate. This module turns that
requirement into a number with a known scale and into a constraint that training enforces:

* :func:`mmd_null` -- the mean and standard deviation of the unbiased IMQ MMD² estimate
  (:func:`dplc.losses.mmd_imq`) between two independent N(0, I) samples of ``n`` points: the
  spread a perfectly distribution-preserving B would still show at that sample size.
* :func:`latent_mmd_sd` -- held-out latents against a fresh prior sample, in units of that null
  standard deviation (≈ N(0, 1)-sized under exact realism; a few units means detectably off).
* :func:`moment_gap`, :func:`moment_null`, :func:`latent_moment_sd` -- the same for the first
  two moments: an unbiased estimate of ‖E z‖² + ‖E zzᵀ − I‖²_F, which sees a variance a few
  percent short at sample sizes where the IMQ MMD cannot.
* :class:`DualLambda` -- "minimise distortion subject to MMD ≤ ε" by dual ascent on the
  Lagrange multiplier (Boyd & Vandenberghe 2004, §5.5; the multiplier update of constrained
  VAEs, Rezende & Viola 2018): every K steps log λ ← log λ + η·clip(s − ε), with s the
  held-out MMD in null-sd units, so λ grows while the constraint is violated and shrinks
  while it is slack. λ is then an output of training, not a guess.

>>> import torch
>>> null = mmd_null(500, 8, draws=10)
>>> g = torch.Generator().manual_seed(1)
>>> abs(latent_mmd_sd(torch.randn(500, 8, generator=g), null, seed=2)) < 4
True
>>> latent_mmd_sd(0.8 * torch.randn(500, 8, generator=g), null, seed=2) > 4
True
>>> mnull = moment_null(200_000, 4, draws=10)   # one component 4% short: ~20 null s.d.
>>> abs(latent_moment_sd(torch.randn(200_000, 4, generator=g), mnull)) < 4
True
>>> latent_moment_sd(torch.randn(200_000, 4, generator=g) * torch.tensor([0.98, 1, 1, 1]), mnull) > 10
True
>>> dual = DualLambda(lam=10.0, epsilon=1.0, step_size=0.5)
>>> round(dual.update(3.0), 2)   # violated by 2 s.d.: λ·e^(0.5·2)
27.18
>>> round(dual.update(0.0), 2)   # slack by 1 s.d.: λ·e^(−0.5)
16.49
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from dplc.losses import DEFAULT_MMD_SCALES, mmd_imq


@dataclass(frozen=True)
class NullSpread:
    """The null distribution of a realism statistic (the MMD estimate, or the moment gap) at
    ``n`` points in ``dim`` dimensions: its mean and standard deviation between independent
    N(0, I) samples."""

    n: int
    dim: int
    mean: float
    sd: float


@functools.lru_cache(maxsize=32)
def mmd_null(n: int, dim: int, draws: int = 16, seed: int = 0,
             scales: tuple[float, ...] = DEFAULT_MMD_SCALES) -> NullSpread:  # fmt: skip
    """Mean and s.d. of ``mmd_imq`` between two independent N(0, I) samples of ``n`` points.

    A pure function of its arguments (its own seeded generator), so it is computed once per
    process for each (n, dim, draws, seed, scales): a stage that builds the same method twice
    (in its worker, then to restore it) or scores every codec of a rate pays for it once."""
    if n < 2 or draws < 2:
        raise ValueError(f"mmd_null needs n >= 2 and draws >= 2, got n={n}, draws={draws}")
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor(
        [float(mmd_imq(torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g), scales))
         for _ in range(draws)]
    )  # fmt: skip
    return NullSpread(n, dim, float(values.mean()), float(values.std()))


def latent_mmd_sd(latents: Tensor, null: NullSpread, seed: int = 0,
                  scales: tuple[float, ...] = DEFAULT_MMD_SCALES) -> float:  # fmt: skip
    """MMD² of ``latents`` (n, dim) against a seeded N(0, I) sample of the same size, divided by
    the null standard deviation at that size (``null`` must be measured at the same n and dim)."""
    z = latents.detach().flatten(1).float()
    if (z.shape[0], z.shape[1]) != (null.n, null.dim):
        raise ValueError(
            f"latents are {tuple(z.shape)}, the null spread was measured at ({null.n}, {null.dim})"
        )
    prior = torch.randn(z.shape, generator=torch.Generator().manual_seed(seed)).to(z.device)
    return float(mmd_imq(z, prior, scales)) / null.sd


def moment_gap(z: Tensor) -> Tensor:
    """Unbiased estimate of ‖E z‖² + ‖E zzᵀ − I‖²_F, how far z's first two moments are from
    N(0, I)'s (zero exactly when the mean is 0 and the covariance I).

    The rows are split into halves A and B and the estimate is m_A·m_B + ⟨M_A − I, M_B − I⟩_F
    with m the mean and M = zᵀz/n of each half: the product of two independent unbiased
    estimates, so its expectation is the squared distance itself and it can be slightly
    negative (like the unbiased MMD of :func:`dplc.losses.mmd_imq`). A plug-in ‖S − I‖² would
    carry a bias of order d²/n that rewards shrinking z, the very error this term is for.
    Rows must be independent draws (the halves share no source).

    >>> import torch
    >>> z = torch.randn(40_000, 3, generator=torch.Generator().manual_seed(0))
    >>> abs(float(moment_gap(z))) < 1e-3, round(float(moment_gap(0.9 * z)), 2)   # (0.81 − 1)²·3
    (True, 0.11)
    """
    z = z.flatten(1).float()
    n = z.shape[0] // 2
    if n < 1:
        raise ValueError("the moment gap needs at least two rows")
    a, b = z[:n], z[n : 2 * n]
    eye = torch.eye(z.shape[1], device=z.device)
    second = ((a.T @ a / n - eye) * (b.T @ b / n - eye)).sum()
    return a.mean(0) @ b.mean(0) + second


@functools.lru_cache(maxsize=32)
def moment_null(n: int, dim: int, draws: int = 32, seed: int = 0) -> NullSpread:
    """Mean and s.d. of :func:`moment_gap` over ``draws`` N(0, I) samples of ``n`` points (its
    own seeded generator; cached per process like :func:`mmd_null`)."""
    if n < 2 or draws < 2:
        raise ValueError(f"moment_null needs n >= 2 and draws >= 2, got n={n}, draws={draws}")
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([float(moment_gap(torch.randn(n, dim, generator=g))) for _ in range(draws)])
    return NullSpread(n, dim, float(values.mean()), float(values.std()))


def latent_moment_sd(latents: Tensor, null: NullSpread) -> float:
    """:func:`moment_gap` of ``latents`` (n, dim) less its null mean, in null standard deviations
    (``null`` from :func:`moment_null` at the same n and dim)."""
    z = latents.detach().flatten(1).float()
    if (z.shape[0], z.shape[1]) != (null.n, null.dim):
        raise ValueError(
            f"latents are {tuple(z.shape)}, the null spread was measured at ({null.n}, {null.dim})"
        )
    return (float(moment_gap(z)) - null.mean) / null.sd


class RunningMoments:
    """A low-noise gradient of :func:`moment_gap`: the gap's gradient, 2·m·∂m + 2·⟨M − I, ∂M⟩,
    with the batch's m and M − I in the factor that is not differentiated replaced by their
    exponential moving averages over recent batches (decay ``decay``).

    The gap's gradient at one batch of n latents is the product of the batch's own moments,
    whose noise (s.d. ≈ √(2/n) in each entry of M) dominates near the prior; averaging that
    factor over about 1/(1 − decay) batches is the tracking estimate of stochastic compositional
    gradient descent (Wang, Fang & Liu, Math. Program. 2017). ``surrogate(z)`` returns a loss
    whose gradient is that estimate (its value is not the gap); ``decay`` = 0 gives back the
    plug-in gradient of the batch.

    >>> import torch
    >>> rm = RunningMoments(1, decay=0.0)
    >>> z = torch.tensor([[2.0], [0.0]], requires_grad=True)   # m = 1, M = 2
    >>> rm.surrogate(z).backward()
    >>> z.grad.flatten().tolist()   # the plug-in gradient of m² + (M − 1)²
    [5.0, 1.0]
    """

    def __init__(self, dim: int, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.mean: Tensor | None = None
        self.second: Tensor | None = None
        self.eye = torch.eye(dim)

    def surrogate(self, z: Tensor) -> Tensor:
        """2·(m · m̄ + ⟨M − I, M̄ − I⟩) with m̄, M̄ the running moments after this batch (detached)."""
        z = z.flatten(1).float()
        m, second = z.mean(0), z.T @ z / z.shape[0]
        with torch.no_grad():
            if self.mean is None or self.second is None:
                self.mean, self.second = m.detach().clone(), second.detach().clone()
            else:
                self.mean.mul_(self.decay).add_(m.detach(), alpha=1 - self.decay)
                self.second.mul_(self.decay).add_(second.detach(), alpha=1 - self.decay)
        eye = self.eye.to(z.device)
        return 2.0 * (m @ self.mean + ((second - eye) * (self.second - eye)).sum())


@dataclass
class DualLambda:
    """The Lagrange multiplier of "distortion s.t. latent MMD ≤ ε null s.d.", by dual ascent.

    ``update(s)`` applies log λ ← log λ + step_size · clip(s − ε, −clip, clip) and returns λ,
    kept in [lam_min, lam_max]. Updating log λ keeps λ positive and makes the step relative.
    """

    lam: float
    epsilon: float = 1.0
    step_size: float = 0.25
    clip: float = 4.0
    lam_min: float = 1e-2
    lam_max: float = 1e6
    updates: int = 0

    def __post_init__(self) -> None:
        if not self.lam > 0 or not math.isfinite(self.lam):
            raise ValueError(f"the initial λ must be positive and finite, got {self.lam}")
        if self.step_size < 0 or self.clip <= 0:
            raise ValueError("step_size must be >= 0 and clip > 0")

    def update(self, violation_sd: float) -> float:
        """One dual step from the measured MMD ``violation_sd`` (null-sd units); returns λ."""
        if not math.isfinite(violation_sd):
            raise ValueError(f"the measured latent MMD is not finite: {violation_sd}")
        gap = max(-self.clip, min(self.clip, violation_sd - self.epsilon))
        self.lam = min(self.lam_max, max(self.lam_min, self.lam * math.exp(self.step_size * gap)))
        self.updates += 1
        return self.lam

    def state_dict(self) -> dict[str, float]:
        return {"lam": self.lam, "updates": self.updates}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.lam = float(state["lam"])
        self.updates = int(state["updates"])
