import numpy as np
import pytest
import torch
from _tiny import tiny_net

from dplc.codec import build_codec
from dplc.nets import Critic, Encoder, Generator, StochasticMap

GEOMETRIES = [(32, 1), (64, 3)]
RATES = [0, 1, 4, 16, 64]


@pytest.mark.parametrize("size,channels", GEOMETRIES)
def test_generator_and_critic_shapes(size, channels):
    net = tiny_net(image_size=size, channels=channels)
    x = Generator(net)(torch.randn(3, net.latent_dim))
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1
    assert Critic(net)(x).shape == (3,)
    assert Encoder(net, "latent")(x).shape == (3, net.latent_dim)


@pytest.mark.parametrize("size,channels", GEOMETRIES)
@pytest.mark.parametrize("c", RATES)
def test_code_and_decoder_shapes_at_every_rate(size, channels, c):
    net = tiny_net(code_channels=c, image_size=size, channels=channels)
    x = torch.rand(2, channels, size, size) * 2 - 1
    if c > 0:
        assert Encoder(net, "code")(x).shape == (2, c, 4, 4)
    b = StochasticMap(net)
    code = torch.zeros(2, c, 4, 4)
    noise = torch.zeros(2, net.noise_channels, 4, 4)
    assert b(code, noise).shape == (2, net.latent_dim)
    for mode in ["map", "prior"] if c == 0 else ["map"]:
        codec = build_codec(net, mode).eval()
        sym = codec.encode(x)
        assert sym.shape == (2, c, 4, 4) and sym.dtype == np.uint8
        assert codec.decode(sym, seed=0).shape == (2, channels, size, size)
        assert codec.sample(2, seed=0).shape == (2, channels, size, size)


def test_noise_channels_and_rate():
    net = tiny_net(code_channels=4)
    assert net.noise_channels == 1  # ceil(16 / 16)
    assert net.bits_per_image == 64
    assert tiny_net(noise=False).noise_channels == 0


def test_critic_width_is_independent():
    narrow = Critic(tiny_net(critic_width=4))
    wide = Critic(tiny_net())
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(narrow) < n(wide)
