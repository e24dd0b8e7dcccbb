"""Decoder noise that any decoder can draw exactly: counter-based, keyed on (seed, image index).

A ``.dplc`` file (format 2) names a 64-bit seed; image ``i`` of the file decodes with the noise
this module draws for the key ``(seed, i)``. The draw is defined by integer arithmetic alone, so
the torch reference decoder (:mod:`dplc.files`) and the torch-free one (:mod:`dplc.runtime`)
see the same noise on any machine and for any batch split:

* the bit generator is Philox-4x64-10 (Salmon et al., "Parallel random numbers: as easy as
  1, 2, 3", SC 2011) with the 128-bit key ``seed + 2**64 * index`` and counter 0, as numpy's
  :class:`numpy.random.Philox` implements it;
* a uniform is the top 53 bits of one 64-bit output times 2**-53, in [0, 1);
* U[-Δ/2, Δ/2] noise (the stochastic map B's input, Tschannen et al. 2018, Sec. 3) is
  ``(u - 1/2) * Δ``; N(0, 1) noise (the generator's prior) is the Box-Muller transform of two
  uniforms ``u1, u2`` (values 2k and 2k+1 of the image are ``r cos(2π u2)`` and
  ``r sin(2π u2)`` with ``r = sqrt(-2 log1p(-u1))`` of uniforms 2k and 2k+1);
* the values are computed in float64 and rounded once to float32.

Uniform noise is exact everywhere; normal noise depends on float64 ``log``/``cos``/``sin``, which
libms round to within an ulp, so it can differ in the last float32 bit across platforms.

>>> spec = NoiseSpec("uniform", (1, 4, 4), scale=1.0)
>>> a = draw(spec, seed=7, count=3)
>>> b = np.concatenate([draw(spec, 7, 1, first=i) for i in range(3)])
>>> a.shape, a.dtype, bool((a == b).all()), bool(abs(a).max() <= 0.5)
((3, 1, 4, 4), dtype('float32'), True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

KINDS = ("none", "uniform", "normal")
_MAX_SEED = 1 << 64
_TO_UNIT = 2.0**-53


@dataclass(frozen=True)
class NoiseSpec:
    """What one image's decoder noise is: ``kind`` (:data:`KINDS`), per-image ``shape``, and the
    width ``scale`` of the uniform interval (Δ, the quantizer step) or the normal's s.d."""

    kind: str
    shape: tuple[int, ...]
    scale: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"noise kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def size(self) -> int:
        """Noise values per image."""
        return math.prod(self.shape)


def spec_for(mode: str, latent_dim: int, noise_channels: int, grid: int, step: float) -> NoiseSpec:
    """The noise of a codec decoder in ``mode`` (``map``/``prior``/``mean``, :mod:`dplc.codec`).

    ``map``: U[-Δ/2, Δ/2] on ``noise_channels`` x grid x grid (none without noise channels);
    ``prior``: z ~ N(0, I_m); ``mean``: none (zeros of the ``map`` shape, which it ignores).
    """
    if mode == "prior":
        return NoiseSpec("normal", (latent_dim,), 1.0)
    if mode == "map" and noise_channels > 0:
        return NoiseSpec("uniform", (noise_channels, grid, grid), step)
    return NoiseSpec("none", (noise_channels, grid, grid), 0.0)


def _uniforms(seed: int, index: int, count: int) -> np.ndarray:
    """``count`` uniforms in [0, 1) from Philox keyed on (seed, index), counter 0."""
    raw = np.random.Philox(key=seed + (index << 64)).random_raw(count)
    return (raw >> np.uint64(11)).astype(np.float64) * _TO_UNIT


def draw(spec: NoiseSpec, seed: int, count: int, first: int = 0) -> np.ndarray:
    """Noise for images ``first .. first+count-1`` of a file with ``seed``: (count, *shape) f32."""
    if not 0 <= seed < _MAX_SEED:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    if first < 0 or count < 0 or first + count > _MAX_SEED:
        raise ValueError(f"image indices {first}..{first + count - 1} are out of range")
    out = np.zeros((count, spec.size), dtype=np.float32)
    if spec.kind == "none" or spec.size == 0:
        return out.reshape(count, *spec.shape)
    n = spec.size
    for i in range(count):
        if spec.kind == "uniform":
            out[i] = (_uniforms(seed, first + i, n) - 0.5) * spec.scale
        else:
            u = _uniforms(seed, first + i, 2 * ((n + 1) // 2))
            u1, u2 = u[0::2], u[1::2]
            radius = np.sqrt(-2.0 * np.log1p(-u1))
            pairs = np.stack([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
            out[i] = (pairs.T.reshape(-1)[:n] * spec.scale)
    return out.reshape(count, *spec.shape)
