"""Tiny configurations and data that train in seconds on 2 CPU cores."""

from __future__ import annotations

import torch

from dplc.config import MethodConfig, NetConfig, from_dict, method_defaults


def tiny_net(code_channels: int = 0, image_size: int = 32, channels: int = 1, **kw) -> NetConfig:
    return NetConfig(
        image_size=image_size,
        channels=channels,
        width=8,
        latent_dim=16,
        code_channels=code_channels,
        **kw,
    )


def tiny_method(name: str, **overrides) -> MethodConfig:
    base = method_defaults(name) | dict(
        batch_size=16, critic_batch_size=16, n_critic=2, lambda_adv=1e-2
    )
    return from_dict(MethodConfig, base | overrides)


def fixed_batch(
    n: int = 16, image_size: int = 32, channels: int = 1, seed: int = 0
) -> torch.Tensor:
    """A fixed, structured tiny batch: smooth blobs in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, image_size), torch.linspace(-1, 1, image_size), indexing="ij"
    )
    cx = torch.rand(n, 1, 1, generator=g) - 0.5
    cy = torch.rand(n, 1, 1, generator=g) - 0.5
    img = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.1) * 2 - 1
    return img.unsqueeze(1).expand(n, channels, image_size, image_size).contiguous()
