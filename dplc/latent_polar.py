"""The polar dither code in a generator's latent: an explicit shared-noise B into a frozen G*.

DPLC codes an image by a stochastic map B into G*'s latent whose output follows G*'s prior,
B(E(X), U) ~ N(0, I) (Tschannen et al. 2018, §3, eq. 6), so that G*(B(·)) follows G*'s
distribution at every rate. DPLC learns B with noise private to the decoder. With noise shared
by encoder and decoder, :mod:`dplc.polar_dither` is an explicit B whose decodes are *exactly*
N(0, I) when its input is N(0, I). This module puts that code into an image G*'s latent, through
the Wasserstein++ encoder E trained jointly with G* (Tschannen et al. 2018, §4):

1. **whitening.** E's latents are only near N(0, I) (the WAE term matches them in MMD). They are
   mapped to t = (z − μ)·W with μ and W = Σ^(−1/2) (ZCA, the whitening nearest the identity,
   Kessy et al. 2018) of E's latents on the training split, so t has mean 0 and covariance I;
2. **rotation.** t·V, V from the SVD A = U·S·Vᵀ of G*'s least-squares linear fit x ≈ A·z + b
   on prior latents, so that coordinates are ordered by their weight s² in pixels. Rotations
   keep N(0, I);
3. **pairs.** Consecutive rotated coordinates form pairs, each coded by
   :mod:`dplc.polar_dither` with its own rings and two shared dither values. The bits are split
   over the pairs by a Lagrangian on Σ wₚ·err(Mₚ) + μ·Σ log₂ Mₚ (:func:`split`), wₚ the pair's
   mean weight, err from :func:`dplc.polar_dither.best_rings`; a pair gets at most
   :data:`PAIR_BUDGET` messages, so a code spends at most that many bits per pair whatever its
   budget;
4. **decode** G*(t̂·Vᵀ): no un-whitening, since t̂·Vᵀ is exactly N(0, I) when t is, and N(0, I)
   is what G* was trained on. The decode's realism is therefore that of t: whitening is what
   brings it near.

The dither of image ``i`` of a file with ``seed`` is the first ``d`` uniforms of Philox-4x64-10
keyed on ``seed + 2**64·i`` (the convention of :mod:`dplc.noise`): encoder and decoder draw it
bit-identically on any machine and batch split.

>>> import torch
>>> code = LatentPolarCode(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64),
...                        torch.eye(4, dtype=torch.float64), ((4,), (1,)))
>>> code.bits
2.0
>>> z = torch.tensor([[1.0, 0.2, 0.3, -0.4]])
>>> u = dither(seed=5, count=1, width=4)
>>> m = code.encode(z, u)
>>> m.shape, bool((code.encode(z, dither(5, 1, 4)) == m).all())
(torch.Size([1, 2]), True)
>>> code.decode(m, u).shape
torch.Size([1, 4])
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dplc import polar_dither

PAIR_BUDGET = 1024
"""The most messages one latent pair gets (10 bits): ``best_rings``'s tables grow with it."""
_TO_UNIT = 2.0**-53


def dither(seed: int, count: int, width: int, first: int = 0) -> Tensor:
    """Shared dither of images ``first .. first+count−1``: (count, width) uniforms in [0, 1),
    float64, from Philox keyed on (seed, image index) as in :mod:`dplc.noise`."""
    if not 0 <= seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    if first < 0 or count < 0 or width < 0:
        raise ValueError(f"dither needs first, count, width >= 0, got {first}, {count}, {width}")
    rows = [np.random.Philox(key=seed + ((first + i) << 64)).random_raw(width) for i in range(count)]
    raw = np.stack(rows) if rows else np.zeros((0, width), dtype=np.uint64)
    return torch.from_numpy((raw >> np.uint64(11)).astype(np.float64) * _TO_UNIT)


def whitening(latents: Tensor) -> tuple[Tensor, Tensor]:
    """μ and the ZCA whitening W = Σ^(−1/2) of ``latents`` (n, d), in float64
    (Kessy, Lewin & Strimmer 2018: the whitening that keeps t = (z − μ)·W nearest z)."""
    if latents.ndim != 2 or latents.shape[0] <= latents.shape[1]:
        raise ValueError(f"whitening needs more latents than dimensions, got shape {tuple(latents.shape)}")
    z = latents.double()
    mu = z.mean(0)
    values, vectors = torch.linalg.eigh(torch.cov((z - mu).T))
    if float(values.min()) <= 0:
        raise ValueError("the latents' covariance is singular: they cannot be whitened")
    return mu, vectors @ torch.diag(values.rsqrt()) @ vectors.T


@torch.no_grad()
def principal_axes(generator: torch.nn.Module, dim: int, n: int = 8192, seed: int = 21) -> tuple[Tensor, list[float]]:
    """V and s² of the SVD A = U·S·Vᵀ of G*'s least-squares linear fit x ≈ A·z + b on ``n``
    prior latents z ~ N(0, I_dim) (seeded): the latent directions by their weight in pixels."""
    z = torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))
    x = torch.cat([generator(c).flatten(1) for c in z.split(512)])
    a = torch.linalg.lstsq((z - z.mean(0)).double(), (x - x.mean(0)).double()).solution.T
    _, s, vh = torch.linalg.svd(a, full_matrices=False)
    return vh.T, [float(v) for v in s**2]


def frontier(budget: int) -> list[tuple[int, float, tuple[int, ...]]]:
    """(messages, error per standard 2-d Gaussian pair, rings) with the least error at each
    message count ≤ ``budget``, over 1–``polar_dither.MAX_RING_SYMBOLS`` radius symbols."""
    best: dict[int, tuple[float, tuple[int, ...]]] = {}
    for radius_symbols in range(1, polar_dither.MAX_RING_SYMBOLS + 1):
        for m, (err, rings) in polar_dither.best_rings(radius_symbols, budget).items():
            if m not in best or err < best[m][0]:
                best[m] = (err, rings)
    return [(m, *best[m]) for m in sorted(best)]


def split(weights: list[float], bits: float, front: list[tuple[int, float, tuple[int, ...]]]) -> list[tuple[int, ...]]:
    """Rings per pair minimising Σ wₚ·err(Mₚ) subject to Σ log₂ Mₚ ≤ ``bits`` (Everett's
    Lagrangian: each pair's choice at a slope μ, μ found by bisection, the most rate that fits)."""
    if bits < 0:
        raise ValueError(f"bits must be >= 0, got {bits}")

    def choose(mu: float) -> list[tuple[int, float, tuple[int, ...]]]:
        return [min(front, key=lambda f: w * f[1] + mu * math.log2(f[0])) for w in weights]

    lo, hi = 1e-9, 1e6  # small μ: much rate; large μ: none
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if sum(math.log2(f[0]) for f in choose(mid)) > bits else (lo, mid)
    return [f[2] for f in choose(hi)]


@dataclass(frozen=True)
class LatentPolarCode:
    """t = (z − ``shift``)·``whiten``·``axes`` coded pair by pair, decoded to t̂·``axesᵀ``.

    ``rings[p]`` are pair p's rings (coordinates 2p, 2p+1 of the rotated latent); a pair of one
    message, ``(1,)``, spends no bits and decodes to an N(0, I₂) sample of its dither."""

    shift: Tensor
    whiten: Tensor
    axes: Tensor
    rings: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        d = self.shift.shape[0]
        if self.whiten.shape != (d, d) or self.axes.shape != (d, d) or 2 * len(self.rings) != d:
            raise ValueError(f"a code for {d}-d latents needs {d}x{d} whitening and axes and {d // 2} pairs' rings")

    @property
    def dim(self) -> int:
        return int(self.shift.shape[0])

    @property
    def bits(self) -> float:
        """Σ log₂ Mₚ: the code's bits per image (a fixed-length code of the messages)."""
        return sum(math.log2(sum(r)) for r in self.rings)

    def _check_dither(self, n: int, u: Tensor) -> None:
        if u.shape != (n, self.dim):
            raise ValueError(f"dither must have shape ({n}, {self.dim}), got {tuple(u.shape)}")

    def encode(self, z: Tensor, u: Tensor) -> Tensor:
        """Messages (n, pairs), int64, of latents z (n, d) with shared dither u (n, d)."""
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(f"latents must have shape (n, {self.dim}), got {tuple(z.shape)}")
        self._check_dither(z.shape[0], u)
        t = (z.double() - self.shift) @ self.whiten @ self.axes
        out = [polar_dither.encode(t[:, 2 * p : 2 * p + 2], (1.0, 1.0), (polar_dither.Pair((0, 1), r),),
                                   u[:, 2 * p : 2 * p + 2]) for p, r in enumerate(self.rings)]  # fmt: skip
        return torch.stack(out, 1)

    def decode(self, messages: Tensor, u: Tensor) -> Tensor:
        """Latents (n, d), float64, for G*: exactly N(0, I) when t was (polar_dither's realism)."""
        if messages.ndim != 2 or messages.shape[1] != len(self.rings):
            raise ValueError(f"messages must have shape (n, {len(self.rings)}), got {tuple(messages.shape)}")
        self._check_dither(messages.shape[0], u)
        for p, r in enumerate(self.rings):
            bad = (messages[:, p] < 0) | (messages[:, p] >= sum(r))
            if bool(bad.any()):
                raise ValueError(f"pair {p}'s messages must lie in [0, {sum(r)}), got {int(messages[bad, p][0])}")
        parts = [polar_dither.decode(messages[:, p], (1.0, 1.0), (polar_dither.Pair((0, 1), r),), u[:, 2 * p : 2 * p + 2])
                 for p, r in enumerate(self.rings)]  # fmt: skip
        return torch.cat(parts, 1) @ self.axes.T


def image_bytes(rings: tuple[tuple[int, ...], ...]) -> int:
    """Bytes of one image's messages in :func:`pack`: ⌈log₂ Πₚ Mₚ / 8⌉ (at least 1)."""
    return max(1, (math.prod(sum(r) for r in rings) - 1).bit_length() + 7 >> 3)


def pack(messages: Tensor, rings: tuple[tuple[int, ...], ...]) -> bytes:
    """The messages (n, pairs) as bytes: per image the mixed-radix number Σₚ mₚ·Πq<p M_q,
    big-endian in :func:`image_bytes` bytes (a fixed-length code: ≤ 8 bits over Σ log₂ Mₚ)."""
    radices = [sum(r) for r in rings]
    if messages.ndim != 2 or messages.shape[1] != len(radices):
        raise ValueError(f"messages must have shape (n, {len(radices)}), got {tuple(messages.shape)}")
    width = image_bytes(rings)
    out = bytearray()
    for row in messages.tolist():
        value, scale = 0, 1
        for m, radix in zip(row, radices, strict=True):
            if not 0 <= m < radix:
                raise ValueError(f"message {m} outside [0, {radix})")
            value, scale = value + m * scale, scale * radix
        out += value.to_bytes(width, "big")
    return bytes(out)


def unpack(data: bytes, rings: tuple[tuple[int, ...], ...], count: int) -> Tensor:
    """The (count, pairs) messages :func:`pack` wrote; refuses a length other than
    ``count`` × :func:`image_bytes` and a number past Π Mₚ (a corrupt or foreign payload)."""
    radices = [sum(r) for r in rings]
    width = image_bytes(rings)
    if count < 0 or len(data) != count * width:
        raise ValueError(f"{count} images take {count * width} bytes, got {len(data)}")
    total = math.prod(radices)
    rows = []
    for i in range(count):
        value = int.from_bytes(data[i * width : (i + 1) * width], "big")
        if value >= total:
            raise ValueError(f"image {i}'s number {value} is past the code's {total} messages")
        row = []
        for radix in radices:
            value, m = divmod(value, radix)
            row.append(m)
        rows.append(row)
    return torch.tensor(rows, dtype=torch.long).reshape(count, len(radices))


def fit(latents: Tensor, axes: Tensor, weights: list[float], bits: float, budget: int = PAIR_BUDGET) -> LatentPolarCode:
    """The code of at most ``bits`` bits for E's training ``latents`` (n, d), d even, with
    rotation ``axes`` and per-coordinate pixel weights (``principal_axes``)."""
    d = latents.shape[1]
    if d % 2 or len(weights) != d or axes.shape != (d, d):
        raise ValueError(f"fit needs an even latent size, {d} weights and {d}x{d} axes")
    shift, whiten = whitening(latents)
    pair_weights = [(weights[2 * p] + weights[2 * p + 1]) / 2 for p in range(d // 2)]
    rings = split(pair_weights, bits, frontier(budget))
    return LatentPolarCode(shift, whiten, axes.double(), tuple(rings))
