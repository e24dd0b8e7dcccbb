"""Limits of lossy compression of a Gaussian source X ~ N(0, diag(σ₁², …, σ_d²)), per dimension.

- distortion-optimal, no realism constraint: reverse water-filling (Cover & Thomas,
  Thm. 10.3.3), D(R) = Σ min(θ, σᵢ²) with R = Σ max(0, ½·log₂(σᵢ²/θ));
- perfect realism with common randomness (Wagner 2022; Theis & Wagner 2021), per component
  D(Rᵢ, 0) = 2σᵢ²(1 − √(1 − 2^(−2Rᵢ))), rate split to minimise the sum;
- perfect realism with private decoder noise only (DPLC's setting): 2·D(R);
- one-shot: D_K, the error of the best K = 2^R-cell quantizer (Lloyd), and 2·D_K under exact
  realism with private noise;
- the distances the Gaussian stage measures decodes with (Gaussian-fit and per-component W₂²).

>>> round(water_filling((1.0,), 1.0), 4)   # σ²·2^(−2R)
0.25
>>> round(realism_common_randomness((1.0,), 1.0), 4)   # 2σ²(1 − √(1 − 1/4))
0.2679
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def water_filling(variances: tuple[float, ...], rate_bits: float) -> float:
    """Distortion-rate function of independent Gaussians, per dimension (reverse water-filling).

    D(R) = (1/d)·Σ min(θ, σᵢ²), θ chosen so Σ max(0, ½·log₂(σᵢ²/θ)) = R (Cover & Thomas 10.3.3).
    """
    v = sorted(variances, reverse=True)
    if rate_bits <= 0:
        return sum(v) / len(v)
    lo, hi = 0.0, max(v)
    for _ in range(200):
        theta = 0.5 * (lo + hi)
        r = sum(0.5 * math.log2(s / theta) for s in v if s > theta)
        lo, hi = (theta, hi) if r > rate_bits else (lo, theta)
    theta = 0.5 * (lo + hi)
    return sum(min(theta, s) for s in v) / len(v)


def _realism_component(var: float, r: float) -> float:
    """D(R, 0) = 2σ²(1 − √(1 − 2^(−2R))) for one N(0, σ²) component (common randomness)."""
    return 2.0 * var * (1.0 - math.sqrt(max(0.0, 1.0 - 2.0 ** (-2.0 * r))))


def _realism_rate_at_slope(var: float, slope: float) -> float:
    """The rate where −dD(R,0)/dR = ``slope`` for one component (the curve is convex)."""

    def neg_derivative(r: float) -> float:
        q = 4.0 ** (-r)
        return var * math.log(4.0) * q / math.sqrt(1.0 - q)

    lo, hi = 1e-12, 64.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if neg_derivative(mid) > slope else (lo, mid)
    return 0.5 * (lo + hi)


def realism_common_randomness(variances: tuple[float, ...], rate_bits: float) -> float:
    """Perfect-realism distortion with common randomness, per dimension, best rate split.

    Minimises Σ D(Rᵢ, 0) subject to Σ Rᵢ = R by equal slopes (each D(·, 0) is convex with
    infinite slope at 0, so every component gets positive rate).
    """
    if rate_bits <= 0:
        return 2.0 * sum(variances) / len(variances)
    lo, hi = 1e-12, 1e12
    for _ in range(200):
        slope = math.sqrt(lo * hi)
        total = sum(_realism_rate_at_slope(v, slope) for v in variances)
        lo, hi = (slope, hi) if total > rate_bits else (lo, slope)
    rates = [_realism_rate_at_slope(v, math.sqrt(lo * hi)) for v in variances]
    return sum(_realism_component(v, r) for v, r in zip(variances, rates, strict=True)) / len(variances)


def realism_private_noise(variances: tuple[float, ...], rate_bits: float) -> float:
    """Perfect realism with private decoder noise only (DPLC's setting): 2·D(R)."""
    return 2.0 * water_filling(variances, rate_bits)


def lloyd_distortion(variances: tuple[float, ...], bits: float, n: int = 100_000, iters: int = 80,
                     seed: int = 0) -> float:  # fmt: skip
    """D_K per dimension: the MSE of a K = 2^bits-cell vector quantizer of the source, by Lloyd's
    algorithm (k-means; Lloyd 1982) on ``n`` samples, measured on ``n`` fresh ones.

    The best code with K cells at this rate; any codec (CAE) has MSE ≥ D_K, and one with exact
    realism and private decoder noise has MSE ≥ 2·D_K (each cell's posterior sampled: the
    cell's variance twice). Lloyd finds a local optimum, so this D_K is an upper estimate.
    """
    k = int(round(2**bits))
    std = torch.tensor(variances).sqrt()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, len(variances), generator=gen) * std
    if k <= 1:
        return float(sum(variances) / len(variances))
    centres = lloyd(x, x[torch.randperm(n, generator=gen)[:k]].clone(), iters)
    test = torch.randn(n, len(variances), generator=gen) * std
    return nearest_mse(test, centres)


def lloyd(x: Tensor, centres: Tensor, iters: int = 80) -> Tensor:
    """``iters`` rounds of Lloyd's algorithm (k-means; Lloyd 1982) on ``x`` from ``centres``:
    each point to its nearest centre, each centre to its cell's mean (an empty cell keeps its)."""
    k = centres.shape[0]
    for _ in range(iters):
        assign = torch.cdist(x, centres).argmin(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1)
        centres = torch.where(counts > 0, sums / counts.clamp_min(1), centres)
    return centres


def nearest_mse(x: Tensor, centres: Tensor) -> float:
    """Per-dimension MSE of every point of ``x`` against its nearest centre."""
    return float((x - centres[torch.cdist(x, centres).argmin(1)]).pow(2).mean())


def code_mmse(x: Tensor, codes: Tensor) -> float:
    """Per-dimension E Var(X | J) of a code J, one row of ``codes`` per point of ``x``: the MSE of
    J's best decode (its cells' means m_J), and half the MSE of J decoded by sampling each cell's
    posterior (private noise, exact realism). So a private codec's MSE / (2·D_K) splits into J's
    own quality, E Var(X | J) / D_K ≥ 1, times its decoder's, MSE / (2·E Var(X | J)). With exact
    realism the decoder pays at least E Var(X | J) + W₂²(P_X, law m_J) ≥ E Var(X | J) + D_K, so
    that second factor is ≥ (1 + D_K / E Var(X | J)) / 2, and below 1 where J's cells are not
    the transport cells of its means.

    Each cell's variance is estimated on its own points with the n_j / (n_j − 1) correction;
    a cell holding a single point adds nothing (its variance is unseen), so with few points per
    cell the figure reads low.

    >>> x = torch.tensor([[0.0], [2.0], [10.0], [14.0]])
    >>> code_mmse(x, torch.tensor([[0], [0], [1], [1]]))  # cell variances 2 and 8, weight 1/2 each
    5.0
    """
    cell, counts, means = _cells(x, codes)
    n, d = x.shape
    ss = torch.zeros(counts.shape[0], dtype=means.dtype).index_add_(0, cell, (x.double() - means[cell]).pow(2).sum(1))
    corrected = torch.where(counts > 1, ss / (counts - 1).clamp_min(1) * counts, torch.zeros_like(ss))
    return float(corrected.sum() / n / d)


def _cells(x: Tensor, codes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(each point's cell index, the cells' counts, their means in float64) of the code
    ``codes`` (one row per point of ``x``; no columns: one cell)."""
    if codes.shape[0] != x.shape[0]:
        raise ValueError(f"one code per point: {codes.shape[0]} codes for {x.shape[0]} points")
    n, d = x.shape
    if codes.numel() == 0:  # rate 0: one cell
        cell = torch.zeros(n, dtype=torch.long)
    else:
        cell = torch.unique(codes.reshape(n, -1), dim=0, return_inverse=True)[1]
    k = int(cell.max()) + 1
    counts = torch.bincount(cell, minlength=k).double()
    means = torch.zeros(k, d, dtype=torch.float64).index_add_(0, cell, x.double()) / counts.unsqueeze(1)
    return cell, counts, means


def transport_floor(x: Tensor, codes: Tensor, steps: int = 500, chunk: int = 20_000) -> float:
    """Per-dimension E Var(X | J) + W₂²(P_X, law m_J): the least MSE of any decoder of the private
    code J whose decodes follow P_X exactly (X̂ independent of X given J, E‖X − X̂‖² =
    E Var(X | J) + E‖m_J − X̂‖², and the second term's least value over X̂ ~ P_X is the transport
    cost from J's cell means, weighted by the cells' masses, to P_X). It lies between
    E Var(X | J) + D_K and 2·E Var(X | J) (:func:`code_mmse`; posterior sampling), and equals
    2·D_K for Lloyd's code, whose cells are the transport cells of their means.

    W₂² is the semi-discrete dual (Kantorovich; Mérigot 2011, Laguerre cells) on the empirical
    measure of ``x``: max over ψ of mean_x min_j (‖x − m_j‖² − ψ_j) + Σ_j p_j ψ_j, by ``steps``
    of supergradient ascent (p_j minus the mass of j's Laguerre cell), keeping the best value.
    Any ψ gives a lower bound (weak duality), so the figure is a floor even short of
    convergence; ψ = 0 gives the nearest-mean error, ≥ D_K. Both terms are those of the
    empirical measure (no n_j / (n_j − 1) correction, unlike :func:`code_mmse`), so the floor
    never exceeds twice its own E Var(X | J).

    >>> x = torch.tensor([[-1.0], [1.0]])
    >>> transport_floor(x, torch.tensor([[0], [0]]))  # one cell: 2·Var, posterior sampling
    2.0
    """
    cell, counts, means = _cells(x, codes)
    n, d = x.shape
    xd, p = x.double(), counts / n
    sq = means.pow(2).sum(1)

    def assign(psi: Tensor) -> tuple[float, Tensor]:
        """(mean over x of min_j ‖x − m_j‖² − ψ_j, the masses of the Laguerre cells)."""
        total, mass = 0.0, torch.zeros_like(p)
        for i in range(0, n, chunk):
            b = xd[i : i + chunk]
            cost = b.pow(2).sum(1, keepdim=True) - 2 * b @ means.T + sq - psi
            best, j = cost.min(1)
            total += float(best.sum())
            mass += torch.bincount(j, minlength=p.shape[0]).double()
        return total / n, mass / n

    within = float((xd - means[cell]).pow(2).sum(1).mean())  # E ‖X − m_J‖² on x
    psi, best = torch.zeros_like(p), -math.inf
    for t in range(steps):
        value, mass = assign(psi)
        best = max(best, value + float(p @ psi))
        psi = psi + (within or 1.0) * (1.0 - t / steps) * (p - mass) / float(p.max())
    return (within + best) / d


def quantile_w2_squared(a: Tensor, b: Tensor) -> list[float]:
    """Per component, W₂² between the empirical distributions of ``a`` and ``b`` (n, d each):
    the mean squared gap of their sorted values (the 1-D quantile coupling is optimal)."""
    if a.shape != b.shape:
        raise ValueError(f"quantile W2 needs samples of the same shape, got {a.shape} and {b.shape}")
    return [float(v) for v in (a.sort(0).values - b.sort(0).values).pow(2).mean(0)]


def gaussian_w2_squared(x: Tensor, variances: tuple[float, ...]) -> float:
    """W₂² between N(μ̂, Σ̂) fitted to samples ``x`` (n, d) and the source N(0, diag σ²).

    W₂²(N(μ₁,Σ₁), N(μ₂,Σ₂)) = ‖μ₁−μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₂^½ Σ₁ Σ₂^½)^½) (Dowson & Landau 1982).
    """
    x = x.double()
    mu = x.mean(0)
    cov = torch.cov(x.T).reshape(x.shape[1], x.shape[1])
    s2 = torch.tensor(variances, dtype=torch.float64)
    root2 = torch.diag(s2.sqrt())
    mid = root2 @ cov @ root2
    evals = torch.linalg.eigvalsh(0.5 * (mid + mid.T)).clamp_min(0.0)
    w2 = mu.pow(2).sum() + torch.trace(cov) + s2.sum() - 2.0 * evals.sqrt().sum()
    return float(w2.clamp_min(0.0))
