"""benchmarks/latent_dither_inverted.py: the per-image inversion through G* that its encoder runs."""

from __future__ import annotations

import torch
from _benchmarks import benchmark_module

bench = benchmark_module("latent_dither_inverted")


def _problem() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    generator = torch.nn.Linear(4, 16).requires_grad_(False)
    target = torch.randn(30, 4, generator=g)
    return generator, generator(target), torch.zeros(30, 4)


def test_inversion_lowers_each_images_error_through_g():
    generator, x, z0 = _problem()
    before = (generator(z0) - x).pow(2).mean(1)
    z = bench.invert(generator, x, z0, steps=200, lr=0.05)
    after = (generator(z.float()) - x).pow(2).mean(1)
    assert (after < 0.1 * before).all()
    # power: no steps, no change
    assert torch.equal(bench.invert(generator, x, z0, steps=0, lr=0.05).float(), z0)


def test_inversion_is_per_image_whatever_the_chunking(monkeypatch):
    """An image's latent sees its own error only, so the chunk it is inverted in does not matter."""
    generator, x, z0 = _problem()
    whole = bench.invert(generator, x, z0, steps=20, lr=0.05)
    monkeypatch.setattr(bench, "CHUNK", 7)
    assert torch.allclose(bench.invert(generator, x, z0, steps=20, lr=0.05), whole, atol=1e-6)
    # and another image beside it does not move it
    assert torch.allclose(bench.invert(generator, x[:1], z0[:1], steps=20, lr=0.05), whole[:1], atol=1e-6)
