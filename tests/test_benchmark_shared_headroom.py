"""benchmarks/shared_headroom.py: the one-bit search finds what it searches for."""

from __future__ import annotations

import torch
from _benchmarks import benchmark_module
from _tiny import fixed_batch, tiny_net

from dplc.codec import build_codec

headroom = benchmark_module("shared_headroom")


def test_greedy_reaches_a_separable_optimum_and_stops():
    """With an error that adds up over bits, one flip per round walks each code to its target
    (the bits it differs in, in as many rounds plus the one that finds no flip)."""
    target = torch.tensor([[0.5, -0.5, 0.5, 0.5], [-0.5, -0.5, -0.5, 0.5]])
    start = torch.full((2, 4), 0.5)

    def error(cand: torch.Tensor) -> torch.Tensor:
        return (cand - target.unsqueeze(1)).abs().sum(-1)

    found, rounds = headroom.greedy(start, error)
    assert torch.equal(found, target)
    assert rounds == 4  # the second code differs in three bits
    assert torch.equal(start, torch.full((2, 4), 0.5))  # the start is not changed in place


def test_the_shared_search_never_decodes_worse_than_the_encoders_code():
    """The shared search lowers the very error it is scored on (the decode under the decoder's
    u), so it can only match or beat E's code; the private one, scored on other draws, need not."""
    torch.manual_seed(0)
    codec = build_codec(tiny_net(code_channels=1), "map").eval()
    x = fixed_batch(12)
    with torch.no_grad():
        row = headroom.headroom(codec, x, draws=2, chunk=5)
    assert row["mse_shared"] <= row["mse_encoder"]
    assert row["mse_shared"] < row["mse_encoder"]  # an untrained E is far from its best codes
    assert 0.0 <= row["bits_differing_shared_private"] <= 1.0
    assert set(row) >= {"latent_mmd_sd_encoder", "latent_mmd_sd_private", "latent_mmd_sd_shared"}
