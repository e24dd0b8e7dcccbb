"""dplc.precise_bn: running statistics re-estimated after training, a frozen part left alone."""

from __future__ import annotations

import pytest
import torch
from _tiny import fixed_batch, tiny_net

from dplc.codec import build_codec
from dplc.precise_bn import batchnorm_layers, recalibrate


def _codec_with_stale_statistics():
    """A DPLC codec whose E and B running statistics are wrong, as after a short training run
    (an exponential average that lags the weights), and whose generator's are set by hand."""
    torch.manual_seed(0)
    codec = build_codec(tiny_net(code_channels=2), "map")
    for m in batchnorm_layers(codec):
        m.running_mean.fill_(0.7)
        m.running_var.fill_(3.0)
    return codec


def _latents(codec, x, noise):
    return codec.latent(codec.code(x, noise), noise)


def test_recalibrated_eval_mode_matches_the_population_statistics_and_g_star_is_untouched():
    codec = _codec_with_stale_statistics()
    x = fixed_batch(256, seed=1)
    g = torch.Generator().manual_seed(2)
    noise = codec.draw_noise(256, g)
    buffers = ("running", "num_batches_tracked")
    weights = {
        k: v.clone() for k, v in codec.state_dict().items() if not any(b in k for b in buffers)
    }
    generator_stats = {k: v.clone() for k, v in codec.generator.state_dict().items()}

    with torch.no_grad():
        stale = _latents(codec.eval(), x, noise)
        batch_stats = _latents(codec.train(), x, noise)  # the statistics of all 256 images
    codec.eval()
    chunks = iter(zip(x.split(32), noise.split(32), strict=True))
    count = recalibrate(
        codec, lambda: _latents(codec, *next(chunks)), batches=8, skip=("generator",)
    )
    with torch.no_grad():
        fresh = _latents(codec, x, noise)

    assert count == len(batchnorm_layers(codec, ("generator",))) > 0
    # the stale statistics are far from the batch's; the recalibrated ones close to them
    assert (stale - batch_stats).abs().mean() > 0.3
    assert (fresh - batch_stats).abs().mean() < 0.1 * (stale - batch_stats).abs().mean()
    assert not codec.training
    for k, v in codec.state_dict().items():
        if k in weights:
            assert torch.equal(v, weights[k]), k  # the weights are not trained
    for k, v in codec.generator.state_dict().items():
        assert torch.equal(v, generator_stats[k]), k  # the frozen G* keeps its statistics
    assert all(m.momentum == 0.1 for m in batchnorm_layers(codec))


def test_recalibrate_refuses_zero_batches_and_skips_a_net_without_batchnorm():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2))
    assert recalibrate(net, lambda: net(torch.ones(1, 2)), batches=1) == 0
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate(net, lambda: None, batches=0)
