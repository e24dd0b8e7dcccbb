"""benchmarks/latent_dither.py: the split of a bit budget over latent pairs."""

from __future__ import annotations

import math

from _benchmarks import benchmark_module

latent = benchmark_module("latent_dither")


def test_the_split_fits_the_budget_and_favours_heavy_pairs():
    front = latent.frontier(16)
    assert [f[0] for f in front] == list(range(1, 17))
    errors = [f[1] for f in front]
    assert errors[0] == max(errors) and errors[-1] == min(errors)  # one message: a prior sample
    weights = [4.0, 2.0, 1.0, 0.5, 0.25]
    for bits in (2.0, 6.0, 12.0):
        rings = latent.split(weights, bits, front)
        used = [math.log2(sum(r)) for r in rings]
        assert sum(used) <= bits + 1e-9
        assert used == sorted(used, reverse=True)  # the heavier pair never gets fewer bits
    assert all(sum(r) == 1 for r in latent.split(weights, 0.0, front))
