"""Rate saved at equal quality between two rate-quality curves (a Bjøntegaard-style delta).

For curves A and B of (bits per pixel, metric) points where a lower metric is better (MSE, FID):

1. keep each curve's efficient points: sorted by rate, a point stays if its metric is lower than
   that of every cheaper point (a codec that gets worse with more bits is not a trade-off);
2. over the metric interval both curves cover, interpolate log2(rate) piecewise linearly as a
   function of the metric, on 256 evenly spaced metric values;
3. the mean difference Δ = mean(log2 r_A − log2 r_B) gives the rate change of A at equal
   quality, ``100 (2^Δ − 1)`` percent: negative when A needs fewer bits.

This is Bjøntegaard's delta rate (VCEG-M33, 2001) with piecewise-linear interpolation instead
of a cubic fit (4 operating points per curve here; a cubic through them can oscillate) and the
metric on a linear axis. Rate-0 points have no logarithm and are left out. ``None`` means the
curves do not overlap.

>>> a = {"bpp": [0.1, 0.2, 0.4], "mse": [0.4, 0.2, 0.1]}
>>> b = {"bpp": [0.2, 0.4, 0.8], "mse": [0.4, 0.2, 0.1]}
>>> rate_change_percent(a, b, "mse")  # A reaches every MSE with half B's bits
-50.0
>>> rate_change_percent(a, {"bpp": [1.0, 2.0], "mse": [0.05, 0.01]}, "mse") is None
True
"""

from __future__ import annotations

import math

import numpy as np

GRID = 256


def efficient_points(rates: list[float], values: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Points with rate > 0 and finite values, sorted by rate, each better than all cheaper ones."""
    pts = sorted((r, v) for r, v in zip(rates, values, strict=True)
                 if r > 0 and math.isfinite(r) and math.isfinite(v))  # fmt: skip
    keep: list[tuple[float, float]] = []
    for r, v in pts:
        if not keep or v < keep[-1][1]:
            keep.append((r, v))
    return np.array([p[0] for p in keep]), np.array([p[1] for p in keep])


def rate_change_percent(a: dict, b: dict, metric: str, rate: str = "bpp") -> float | None:
    """Percent rate change of curve ``a`` against ``b`` at equal ``metric`` (lower is better)."""
    ra, va = efficient_points(a[rate], a[metric])
    rb, vb = efficient_points(b[rate], b[metric])
    if len(ra) < 2 or len(rb) < 2:
        return None
    lo, hi = max(va.min(), vb.min()), min(va.max(), vb.max())
    if not lo < hi:
        return None
    grid = np.linspace(lo, hi, GRID)
    # np.interp needs increasing abscissae: the metric falls as the rate grows, so reverse
    la = np.interp(grid, va[::-1], np.log2(ra[::-1]))
    lb = np.interp(grid, vb[::-1], np.log2(rb[::-1]))
    return round(float(100 * (2 ** float(np.mean(la - lb)) - 1)), 2)
