"""Subtractive dither on the circle: a shared-randomness code for Gaussian vectors with exact realism.

Components of X ~ N(0, diag σ²) are coded in groups: a *pair* (i, j) in polar form, or a
*single* component by ``dplc.cdf_dither``. For a pair, the whitened point (X_i/σ_i, X_j/σ_j) has
a radius R (Rayleigh) and an angle Θ (uniform on the circle), independent. With dither (U_R, U_Θ)
shared with the decoder:

- the radius is coded in its CDF domain, V = 1 − exp(−R²/2), with L symbols
  (``cdf_dither.uniform_symbols``), J_R ∈ {0, …, L − 1};
- the angle with K = ``rings[J_R]`` symbols on the circle: J_Θ = ⌊K·Θ/2π + U_Θ⌋ mod K, decoded
  as Θ̂/2π = ((J_Θ + ½ − U_Θ)/K) mod 1. On a circle the dither needs no extra symbol and no
  reflection, so a ring of K cells costs exactly K messages.

The pair's message is J_Θ plus the number of angular cells of the rings before J_R, so a pair
spends Σ ``rings`` messages; as in Lloyd's 2-d cells, outer rings can carry more cells than
inner ones. The groups' messages combine by mixed radix into one message of Π M_g values.

Exact realism: given J_R (a function of R and U_R), Θ is still uniform and independent of
(R, U_R), so by Schuchman's theorem on the circle (Θ̂ − Θ uniform and independent of Θ for a
uniform U_Θ) Θ̂ is uniform and independent of R̂; R̂ is exactly Rayleigh (``cdf_dither``). So the
decoded pair is exactly N(0, diag(σ_i², σ_j²)), the groups use independent dither, and the
decoded vector is exactly N(0, diag σ²).

>>> import torch
>>> layout = (Pair((0, 1), (4,)),)   # one ring of four quadrant-like cells: 2 bits
>>> x = torch.tensor([[1.0, 0.2]], dtype=torch.float64)
>>> u = torch.tensor([[0.3, 0.6]], dtype=torch.float64)
>>> encode(x, (1.0, 1.0), layout, u).tolist()
[0]
>>> messages(layout)
4
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import torch
from torch import Tensor

from dplc import cdf_dither

MAX_MESSAGES = 2**63 - 1
"""The most messages ``encode``'s one int64 per vector can number."""
MAX_BITS = 12
"""The largest message ``design`` searches (its tables grow with 2^bits)."""
DESIGN_SAMPLES = 200_000
"""Standard 2-d Gaussian points on which ``design`` estimates the rings' errors (seed 0)."""
MAX_RING_SYMBOLS = 8
"""The most radius symbols ``design`` tries for a pair."""


@dataclass(frozen=True)
class Pair:
    """Components (i, j) in polar form: ``rings[r]`` angular cells where the radius symbol is r."""

    components: tuple[int, int]
    rings: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.rings or any(k < 1 for k in self.rings):
            raise ValueError(f"a pair needs one or more rings of at least one cell, got {self.rings}")
        if self.components[0] == self.components[1]:
            raise ValueError(f"a pair needs two components, got {self.components}")

    @property
    def messages(self) -> int:
        return sum(self.rings)


@dataclass(frozen=True)
class Single:
    """Component ``component`` alone, with ``levels`` symbols (``dplc.cdf_dither``)."""

    component: int
    levels: int

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"a component needs at least one symbol, got {self.levels}")

    @property
    def messages(self) -> int:
        return self.levels


Group = Pair | Single
Layout = tuple[Group, ...]


def messages(layout: Layout) -> int:
    """The number of distinct messages of a layout: Π over its groups."""
    return math.prod(g.messages for g in layout)


def _check(x: Tensor, variances: tuple[float, ...], layout: Layout, u: Tensor) -> None:
    """Every component in exactly one group, shapes that match: else a clear error."""
    used = sorted(c for g in layout for c in (g.components if isinstance(g, Pair) else (g.component,)))
    if used != list(range(len(variances))):
        raise ValueError(f"the layout must use each of the {len(variances)} components once, uses {used}")
    if x.dim() != 2 or x.shape[1] != len(variances):
        raise ValueError(f"expected (n, {len(variances)}) values, got shape {tuple(x.shape)}")
    if messages(layout) > MAX_MESSAGES:
        raise ValueError(f"the layout has {messages(layout)} messages; one int64 message holds at most "
                         f"{MAX_MESSAGES}: code its groups apart")  # fmt: skip
    if u.shape != (x.shape[0], 2 * len(layout)):
        raise ValueError(f"the dither must be (n, {2 * len(layout)}): two uniforms per group, got {tuple(u.shape)}")


def _radius_k(pair: Pair) -> Tensor:
    return torch.tensor(float(len(pair.rings) - 1), dtype=torch.float64)


def _encode_pair(a: Tensor, b: Tensor, pair: Pair, u_r: Tensor, u_t: Tensor) -> Tensor:
    """The pair's message for whitened coordinates (a, b): cells of the rings before, plus J_Θ."""
    v = -torch.expm1(-(a * a + b * b) / 2)
    j_r = cdf_dither.uniform_symbols(v, _radius_k(pair), u_r)
    rings = torch.tensor(pair.rings, dtype=torch.long)
    k = rings[j_r]
    theta = torch.remainder(torch.atan2(b, a) / (2 * math.pi), 1.0)
    j_t = torch.remainder(torch.floor(k * theta + u_t), k).long()
    offsets = torch.cumsum(rings, 0) - rings
    return offsets[j_r] + j_t


def _decode_pair(m: Tensor, pair: Pair, u_r: Tensor, u_t: Tensor) -> tuple[Tensor, Tensor]:
    """Whitened (â, b̂) of the pair's message ``m`` (its radius symbol found from the offsets)."""
    rings = torch.tensor(pair.rings, dtype=torch.long)
    ends = torch.cumsum(rings, 0)
    j_r = torch.searchsorted(ends, m, right=True)
    k = rings[j_r]
    j_t = m - (ends - rings)[j_r]
    r = torch.sqrt(-2 * torch.log1p(-cdf_dither.uniform_decode(j_r, _radius_k(pair), u_r)))
    theta = 2 * math.pi * torch.remainder((j_t.double() + 0.5 - u_t) / k, 1.0)
    return r * torch.cos(theta), r * torch.sin(theta)


def encode(x: Tensor, variances: tuple[float, ...], layout: Layout, u: Tensor) -> Tensor:
    """One message per vector in [0, ``messages(layout)``) (int64); ``u`` (n, 2·groups) uniform
    on [0, 1), shared with the decoder (group g uses columns 2g and 2g + 1)."""
    _check(x, variances, layout, u)
    x, u = x.double(), u.double()
    sd = [math.sqrt(v) for v in variances]
    out = torch.zeros(x.shape[0], dtype=torch.long)
    radix = 1
    for g, group in enumerate(layout):
        if isinstance(group, Pair):
            i, j = group.components
            m = _encode_pair(x[:, i] / sd[i], x[:, j] / sd[j], group, u[:, 2 * g], u[:, 2 * g + 1])
        else:
            c = group.component
            m = cdf_dither.encode(x[:, c : c + 1], (variances[c],), (group.levels,), u[:, 2 * g : 2 * g + 1])[:, 0]
        out += m * radix
        radix *= group.messages
    return out


def decode(m: Tensor, variances: tuple[float, ...], layout: Layout, u: Tensor) -> Tensor:
    """The decoded vectors (n, d) (float64) of messages ``m`` with the encoder's dither ``u``."""
    x_hat = torch.zeros(m.shape[0], len(variances), dtype=torch.float64)
    _check(x_hat, variances, layout, u)
    if bool(((m < 0) | (m >= messages(layout))).any()):
        raise ValueError(f"messages out of range: this layout has {messages(layout)}")
    u = u.double()
    sd = [math.sqrt(v) for v in variances]
    rest = m.clone()
    for g, group in enumerate(layout):
        part, rest = rest % group.messages, rest // group.messages
        if isinstance(group, Pair):
            i, j = group.components
            a, b = _decode_pair(part, group, u[:, 2 * g], u[:, 2 * g + 1])
            x_hat[:, i], x_hat[:, j] = a * sd[i], b * sd[j]
        else:
            c = group.component
            x_hat[:, c] = cdf_dither.decode(part[:, None], (variances[c],), (group.levels,), u[:, 2 * g : 2 * g + 1])[:, 0]
    return x_hat


@cache
def ring_errors(radius_symbols: int, max_cells: int) -> tuple[tuple[float, ...], ...]:
    """E[r][K]: the standard 2-d Gaussian's squared error, summed over both coordinates and
    averaged over ``DESIGN_SAMPLES`` points, from the points whose radius symbol is r when
    that ring has K angular cells (K = 1 … ``max_cells``; index 0 unused)."""
    gen = torch.Generator().manual_seed(0)
    ab = torch.randn(DESIGN_SAMPLES, 2, generator=gen, dtype=torch.float64)
    u = torch.rand(DESIGN_SAMPLES, 2, generator=gen, dtype=torch.float64)
    table = [[math.inf] * (max_cells + 1) for _ in range(radius_symbols)]
    for k in range(1, max_cells + 1):
        pair = Pair((0, 1), (k,) * radius_symbols)
        m = _encode_pair(ab[:, 0], ab[:, 1], pair, u[:, 0], u[:, 1])
        a, b = _decode_pair(m, pair, u[:, 0], u[:, 1])
        err = (a - ab[:, 0]).pow(2) + (b - ab[:, 1]).pow(2)
        sums = torch.zeros(radius_symbols, dtype=torch.float64).index_add_(0, m // k, err)
        for r in range(radius_symbols):
            table[r][k] = float(sums[r]) / DESIGN_SAMPLES
    return tuple(tuple(row) for row in table)


def best_rings(radius_symbols: int, budget: int) -> dict[int, tuple[float, tuple[int, ...]]]:
    """For each message count m ≤ budget, the rings (one cell count per radius symbol, Σ = m)
    with the least standard 2-d error (dynamic programming over the rings)."""
    table = ring_errors(radius_symbols, min(budget, 64))
    front: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
    for row in table:
        nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
        for used, (err, rings) in front.items():
            for k in range(1, min(len(row) - 1, budget - used) + 1):
                cand = (err + row[k], (*rings, k))
                if used + k not in nxt or cand[0] < nxt[used + k][0]:
                    nxt[used + k] = cand
        front = nxt
    return front


def _group_options(comps: tuple[int, ...], variances: tuple[float, ...], budget: int) -> dict[int, tuple[float, tuple[Group, ...]]]:
    """For each message count, the least-error way to code these one or two components."""
    opts: dict[int, tuple[float, tuple[Group, ...]]] = {}

    def offer(m: int, err: float, groups: tuple[Group, ...]) -> None:
        if m <= budget and (m not in opts or err < opts[m][0]):
            opts[m] = (err, groups)

    if len(comps) == 1:
        for lv in range(1, budget + 1):
            offer(lv, variances[comps[0]] * cdf_dither.scalar_mse(lv), (Single(comps[0], lv),))
        return opts
    i, j = comps
    for li in range(1, budget + 1):
        for lj in range(1, budget // li + 1):
            err = variances[i] * cdf_dither.scalar_mse(li) + variances[j] * cdf_dither.scalar_mse(lj)
            offer(li * lj, err, (Single(i, li), Single(j, lj)))
    # rotational symmetry: each whitened coordinate carries half the pair's error
    weight = (variances[i] + variances[j]) / 2
    for radius_symbols in range(1, min(MAX_RING_SYMBOLS, budget) + 1):
        for m, (err, rings) in best_rings(radius_symbols, budget).items():
            offer(m, weight * err, (Pair((i, j), rings),))
    return opts


def design(variances: tuple[float, ...], bits: float) -> Layout:
    """The layout with Π M_g ≤ 2^bits and the least estimated MSE: components sorted by
    variance and grouped in adjacent pairs (the last alone when d is odd), each group coded
    as a polar pair or as two singles, message counts split over the groups."""
    if not 0 <= bits <= MAX_BITS:
        raise ValueError(f"design searches messages of 0 to {MAX_BITS} bits, got {bits}")
    budget = int(math.floor(2.0**bits + 1e-9))
    order = sorted(range(len(variances)), key=lambda c: -variances[c])
    front: dict[int, tuple[float, tuple[Group, ...]]] = {1: (0.0, ())}
    for start in range(0, len(order), 2):
        opts = _group_options(tuple(order[start : start + 2]), variances, budget)
        nxt: dict[int, tuple[float, tuple[Group, ...]]] = {}
        for used, (err, groups) in front.items():
            for m, (e, g) in opts.items():
                if used * m <= budget and (used * m not in nxt or err + e < nxt[used * m][0]):
                    nxt[used * m] = (err + e, groups + g)
        front = nxt
    return min(front.values(), key=lambda t: t[0])[1]
