"""Subtractive dither in the source's CDF domain: a shared-randomness code with exact realism.

A reference codec for independent Gaussian components X_i ~ N(0, σ_i²) whose encoder and
decoder share a uniform U_i per component (the `.dplc` file's seed gives such a draw). With
``L`` symbols per component and K = L − 1:

- encoder: V = Φ(X/σ) is uniform on [0, 1]; the symbol is J = ⌊K·V + U⌋ ∈ {0, …, K};
- decoder: T = (J + ½ − U)/K, reflected into [0, 1] (``reflect``), X̂ = σ·Φ⁻¹(T).

Exact realism for every K ≥ 1: by Schuchman's theorem (subtractive dither; Schuchman 1964,
Gray & Stockham 1993) E = T − V is uniform on (−1/(2K), 1/(2K)] and independent of V, so V + E
has a trapezoid density on [−1/(2K), 1 + 1/(2K)] whose mass outside [0, 1] is the mirror image
of its deficit inside: reflected, T is exactly uniform and X̂ exactly N(0, σ²). The components
use independent U's, so the decoded vector is exactly N(0, diag σ²). With one symbol (K = 0)
the component is decoded as X̂ = σ·Φ⁻¹(U), an independent sample (rate 0).

Such a code is below the private-noise bound 2·D_L of its own number of symbols where the
error of the equal-mass cells (width 1/K in V) costs less than sampling a Lloyd cell's posterior,
which is a question of L (``scalar_mse``; measured in ``benchmarks/gaussian_dither.py``).
Shared randomness is what makes that possible: decoded with an independent U′, the symbol's law is
P(J = 0) = P(J = K) = 1/(2K), 1/K for the others, and T′ = (J + ½ − U′)/K reflected is again
exactly uniform, so the decode is a private-noise sample of its cell, still exactly N(0, σ²)
but with more error (``tests/test_cdf_dither.py``).

>>> import torch
>>> x = torch.tensor([[0.3, -1.2]], dtype=torch.float64)
>>> u = torch.tensor([[0.25, 0.5]], dtype=torch.float64)
>>> encode(x, (1.0, 1.0), (4, 1), u).tolist()
[[2, 0]]
>>> [round(v, 4) for v in decode(encode(x, (1.0, 1.0), (4, 1), u), (1.0, 1.0), (4, 1), u)[0].tolist()]
[0.6745, 0.0]
"""

from __future__ import annotations

import math
from functools import cache

import torch
from torch import Tensor


def _check(variances: tuple[float, ...], levels: tuple[int, ...], shape: torch.Size) -> None:
    """A clear error for a mismatched or invalid layout (no silent broadcasting)."""
    if len(variances) != len(levels):
        raise ValueError(f"{len(variances)} variances but {len(levels)} symbol counts")
    if any(lv < 1 for lv in levels):
        raise ValueError(f"every component needs at least one symbol, got {levels}")
    if any(not (v > 0 and math.isfinite(v)) for v in variances):
        raise ValueError(f"variances must be positive and finite, got {variances}")
    if len(shape) != 2 or shape[1] != len(levels):
        raise ValueError(f"expected (n, {len(levels)}) values, got shape {tuple(shape)}")


def reflect(t: Tensor) -> Tensor:
    """Fold t ∈ [−1, 2] into [0, 1] by reflection at 0 and 1 (the step that makes T uniform)."""
    t = torch.where(t < 0, -t, t)
    return torch.where(t > 1, 2 - t, t)


def uniform_symbols(v: Tensor, k: Tensor, u: Tensor) -> Tensor:
    """J = ⌊K·V + U⌋ ∈ {0, …, K} for V uniform on [0, 1] (float64 in, int64 out; K broadcasts)."""
    return torch.minimum(torch.floor(k * v + u), k).long()


def uniform_decode(j: Tensor, k: Tensor, u: Tensor) -> Tensor:
    """T = reflect((J + ½ − U)/K), exactly uniform on [0, 1]; T = U where K = 0 (float64)."""
    t = torch.where(k > 0, reflect((j.double() + 0.5 - u) / k.clamp_min(1)), u)
    return t.clamp(torch.finfo(torch.float64).tiny, 1 - torch.finfo(torch.float64).eps)


def encode(x: Tensor, variances: tuple[float, ...], levels: tuple[int, ...], u: Tensor) -> Tensor:
    """Symbols J_i = ⌊K_i·Φ(x_i/σ_i) + u_i⌋ ∈ {0, …, K_i} (int64), K_i = levels_i − 1.

    ``x`` and ``u`` are (n, d); ``u`` uniform on [0, 1), shared with the decoder.
    """
    _check(variances, levels, x.shape)
    if u.shape != x.shape:
        raise ValueError(f"the dither must match the values: {tuple(u.shape)} vs {tuple(x.shape)}")
    k = torch.tensor([lv - 1 for lv in levels], dtype=torch.float64)
    v = torch.special.ndtr(x.double() / torch.tensor(variances, dtype=torch.float64).sqrt())
    return uniform_symbols(v, k, u.double())


def decode(j: Tensor, variances: tuple[float, ...], levels: tuple[int, ...], u: Tensor) -> Tensor:
    """X̂_i = σ_i·Φ⁻¹(reflect((J_i + ½ − u_i)/K_i)), or σ_i·Φ⁻¹(u_i) where K_i = 0 (float64)."""
    _check(variances, levels, j.shape)
    k = torch.tensor([lv - 1 for lv in levels], dtype=torch.float64)
    if bool(((j < 0) | (j > k.long())).any()):
        raise ValueError(f"symbols out of range for {levels} symbols per component")
    t = uniform_decode(j, k, u.double())
    return torch.special.ndtri(t) * torch.tensor(variances, dtype=torch.float64).sqrt()


@cache
def scalar_mse(levels: int, grid: int = 20_000, dither_grid: int = 64) -> float:
    """E(X − X̂)² for X ~ N(0, 1) with ``levels`` symbols, by midpoint quadrature over
    (V, E) ∈ [0, 1] × (−1/(2K), 1/(2K)) (Schuchman: E uniform and independent of V); 2 at K = 0."""
    if levels < 1:
        raise ValueError(f"levels must be at least 1, got {levels}")
    if levels == 1:
        return 2.0
    k = levels - 1
    v = (torch.arange(grid, dtype=torch.float64) + 0.5) / grid
    e = ((torch.arange(dither_grid, dtype=torch.float64) + 0.5) / dither_grid - 0.5) / k
    t = reflect(v[:, None] + e[None, :]).clamp(1e-300, 1 - 1e-16)
    return float((torch.special.ndtri(v)[:, None] - torch.special.ndtri(t)).pow(2).mean())


def _tuples(d: int, budget: int, largest: int) -> list[tuple[int, ...]]:
    """Non-increasing tuples of d symbol counts ≥ 1, each ≤ ``largest``, with product ≤ budget."""
    if d == 0:
        return [()]
    return [(lv, *rest) for lv in range(1, min(largest, budget) + 1)
            for rest in _tuples(d - 1, budget // lv, lv)]  # fmt: skip


def allocate(variances: tuple[float, ...], bits: float) -> tuple[int, ...]:
    """Symbols per component with Π L_i ≤ 2^bits (one fixed-length message of ``bits``) that
    minimise Σ σ_i²·``scalar_mse``(L_i): every non-increasing tuple, the most symbols to the
    largest variance (rearrangement)."""
    budget = int(math.floor(2.0**bits + 1e-9))
    order = sorted(range(len(variances)), key=lambda i: -variances[i])

    def cost(t: tuple[int, ...]) -> float:
        return sum(variances[i] * scalar_mse(lv) for i, lv in zip(order, t, strict=True))

    best = min(_tuples(len(variances), budget, budget), key=cost)
    out = [1] * len(variances)
    for i, lv in zip(order, best, strict=True):
        out[i] = lv
    return tuple(out)
