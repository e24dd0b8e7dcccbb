"""The networks of Tschannen et al. 2018: encoder E, stochastic map B, generator G and critic f.

The 64x64 nets are the paper's DCGAN family (widths 64-128-256-512 at ``width=64``); the 32x32
nets drop one stride-2 stage, so both keep the 4x4 code grid:

====================  =========================================  ==========================
net                   32x32 (``w`` = width)                      64x64 (``w`` = 64)
====================  =========================================  ==========================
E trunk               conv4s2 w, 2w, 4w (BN after all but first)  w, 2w, 4w, 8w
E code head           conv3x3 -> C at 4x4                         same
E latent head         conv4x4 -> m, BatchNorm                     same
B                     [code, noise] -> tconv3x3 4w, 2 res blocks,  8w
                      conv4x4 -> m, BatchNorm
G                     tconv4x4 m -> 4w at 4x4; tconv4s2 2w, w, w;  8w; 4w, 2w, w, w
                      conv3x3 -> channels, tanh
critic                conv3x3 w; conv4s2 w, 2w, 4w + LayerNorm;    w, 2w, 4w, 8w
                      conv4x4 -> 1
====================  =========================================  ==========================

>>> import torch
>>> from dplc.config import NetConfig
>>> net = NetConfig(image_size=32, channels=1, width=8, latent_dim=16, code_channels=2)
>>> x = torch.zeros(3, 1, 32, 32)
>>> Encoder(net, "code")(x).shape, Encoder(net, "latent")(x).shape
(torch.Size([3, 2, 4, 4]), torch.Size([3, 16]))
>>> Generator(net)(torch.zeros(3, 16)).shape
torch.Size([3, 1, 32, 32])
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from dplc.config import CODE_GRID, NetConfig


def _stages(net: NetConfig) -> int:
    """Stride-2 stages between the image and the 4x4 grid: 3 at 32x32, 4 at 64x64."""
    return {32: 3, 64: 4}[net.image_size]


def trunk_widths(net: NetConfig) -> list[int]:
    """Widths of the stride-2 stages going down: w, 2w, 4w (, 8w)."""
    return [net.width * 2**i for i in range(_stages(net))]


class Encoder(nn.Module):
    """E: image -> code (C x 4 x 4, before quantization) or latent (m, BatchNorm at the end).

    With ``noise_channels`` > 0 (a code encoder of ``dplc_shared``) E also reads the decoder's
    noise u (noise_channels x 4 x 4): the code is head(trunk(x)) + noise_head(u). ``noise_head``
    starts at zero and is created without drawing from torch's RNG, so at initialisation the
    encoder, and every module built after it, equals the private-noise one of the same seed.
    """

    def __init__(
        self, net: NetConfig, head: Literal["code", "latent"], noise_channels: int = 0
    ) -> None:
        super().__init__()
        widths = trunk_widths(net)
        layers: list[nn.Module] = []
        cin = net.channels
        for i, w in enumerate(widths):
            layers.append(nn.Conv2d(cin, w, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(w))
            layers.append(nn.ReLU(inplace=True))
            cin = w
        self.trunk = nn.Sequential(*layers)
        self.head_kind = head
        if head == "code":
            if net.code_channels < 1:
                raise ValueError("a code encoder needs code_channels >= 1")
            self.head: nn.Module = nn.Conv2d(cin, net.code_channels, 3, padding=1)
        elif head == "latent":
            self.head = nn.Sequential(
                nn.Conv2d(cin, net.latent_dim, CODE_GRID, bias=False),
                nn.Flatten(),
                nn.BatchNorm1d(net.latent_dim),
            )
        else:
            raise ValueError(f"unknown encoder head {head!r}")
        self.noise_head: nn.Module | None = None
        if noise_channels > 0:
            if head != "code":
                raise ValueError("only a code encoder reads the decoder's noise")
            conv = nn.utils.skip_init(nn.Conv2d, noise_channels, net.code_channels, 3, padding=1, bias=False)
            nn.init.zeros_(conv.weight)
            self.noise_head = conv

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        out = self.head(self.trunk(x))
        if self.noise_head is not None:
            if noise is None:
                raise ValueError("this encoder reads the decoder's noise u; pass it")
            out = out + self.noise_head(noise.to(out.dtype))
        return out


class ResBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus identity, then ReLU (He et al. 2016)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.body(x))


class StochasticMap(nn.Module):
    """B: quantized code (C x 4 x 4) ⊕ uniform noise (ceil(m/16) x 4 x 4) -> latent (m).

    With ``net.noise`` False (the CAE) B is deterministic; with C = 0 it maps noise alone.
    """

    def __init__(self, net: NetConfig) -> None:
        super().__init__()
        cin = net.code_channels + net.noise_channels
        if cin < 1:
            raise ValueError("B needs code channels or noise channels")
        w = trunk_widths(net)[-1]
        self.body = nn.Sequential(
            nn.ConvTranspose2d(cin, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(inplace=True),
            ResBlock(w),
            ResBlock(w),
            nn.Conv2d(w, net.latent_dim, CODE_GRID, bias=False),
            nn.Flatten(),
            nn.BatchNorm1d(net.latent_dim),
        )

    def forward(self, code: Tensor, noise: Tensor) -> Tensor:
        return self.body(torch.cat([code, noise], dim=1))


class Generator(nn.Module):
    """G: latent (m) -> image in [-1, 1] (DCGAN transposed convolutions, tanh)."""

    def __init__(self, net: NetConfig) -> None:
        super().__init__()
        widths = trunk_widths(net)[::-1] + [net.width]  # 4w, 2w, w, w (32x32)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(net.latent_dim, widths[0], CODE_GRID, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]
        layers += [nn.Conv2d(widths[-1], net.channels, 3, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.latent_dim = net.latent_dim

    def forward(self, z: Tensor) -> Tensor:
        return self.body(z.reshape(z.shape[0], self.latent_dim, 1, 1))


class Critic(nn.Module):
    """f: image -> scalar (WGAN-GP critic; LayerNorm, never BatchNorm, so the penalty is per sample)."""

    def __init__(self, net: NetConfig) -> None:
        super().__init__()
        base = net.critic_width or net.width
        widths = [base * 2**i for i in range(_stages(net))]
        layers: list[nn.Module] = [
            nn.Conv2d(net.channels, base, 3, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        cin = base
        for w in widths:
            layers += [
                nn.Conv2d(cin, w, 4, stride=2, padding=1),
                nn.GroupNorm(1, w),  # LayerNorm over (C, H, W) with per-channel affine
                nn.LeakyReLU(0.2, inplace=True),
            ]
            cin = w
        layers += [nn.Conv2d(cin, 1, CODE_GRID), nn.Flatten()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).squeeze(1)
