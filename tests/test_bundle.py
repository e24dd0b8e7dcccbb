"""dplc.bundle: a codec's entropy model is counted as the train stage counts it."""

from __future__ import annotations

import torch
from _tiny import fixed_batch, tiny_net

from dplc.bundle import fit_entropy_model
from dplc.codec import build_codec
from dplc.data import to_float, to_uint8
from dplc.entropy import EntropyModel


def test_the_entropy_model_counts_only_the_first_limit_images():
    torch.manual_seed(0)
    codec = build_codec(tiny_net(code_channels=2), "map").eval()
    images = torch.cat([to_uint8(fixed_batch(8, seed=1)), to_uint8(fixed_batch(8, seed=2))])
    model = fit_entropy_model(codec, images, limit=8)
    assert model == EntropyModel.fit(codec.encode(to_float(images[:8])), codec.net.levels)
    assert sum(model.counts[0]) == 8 * 16  # 8 images, 4x4 symbols a channel
    assert model != fit_entropy_model(codec, images, limit=16)


def test_a_shared_noise_codec_is_counted_on_random_noise_not_on_zero():
    """Its symbols depend on u; the files it writes draw u at random, so must the count."""
    torch.manual_seed(0)
    codec = build_codec(tiny_net(code_channels=2), "shared").eval()
    torch.nn.init.normal_(codec.encoder.noise_head.weight, std=1.0)  # the code now reads u
    images = to_uint8(fixed_batch(16, seed=1))
    x = to_float(images)
    u = codec.shared_noise(0, 16)
    model = fit_entropy_model(codec, images)
    assert model == EntropyModel.fit(codec.encode(x, noise=u), codec.net.levels)
    assert model != EntropyModel.fit(codec.encode(x, noise=0 * u), codec.net.levels)
