"""benchmarks/latent_dither.py: its measurements on a toy linear generator."""

from __future__ import annotations

import torch
from _benchmarks import benchmark_module

from dplc import latent_polar, realism

bench = benchmark_module("latent_dither")


def test_entropy_counts_each_pairs_messages():
    assert bench.entropy_bits(torch.tensor([[0, 1], [1, 1], [2, 1], [3, 1]])) == 2.0  # 2 bits + 0 bits


def test_shared_dither_beats_a_private_one_with_the_same_cells(monkeypatch):
    g = torch.Generator().manual_seed(0)
    generator = torch.nn.Linear(4, 16).double().requires_grad_(False)
    z_train, z = torch.randn(20_000, 4, generator=g, dtype=torch.float64), torch.randn(4_000, 4, generator=g, dtype=torch.float64)
    axes, weights = latent_polar.principal_axes(generator.float(), 4, n=2048)
    code = latent_polar.fit(z_train, axes, weights, bits=6.0, budget=16)
    x = bench.decode_through(generator.float(), z)
    null, mnull = realism.mmd_null(500, 4, draws=4), realism.moment_null(4_000, 4, draws=4)
    monkeypatch.setattr(bench, "HOLDOUT", 500)
    r = bench.measure(code, generator.float(), z, x, 6.0, null, mnull, featnet=None)
    assert r["bits_used"] <= 6.0 and r["bits_entropy"] <= r["bits_used"] + 1e-9
    assert r["mse"] < r["mse_private_dither"] and r["pv"] > 0 and r["rfid"] is None
