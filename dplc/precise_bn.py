"""Precise BatchNorm: re-estimate a trained network's running statistics from many batches.

BatchNorm layers normalise with the batch's own mean and variance while training and with
running averages (an exponential average, momentum 0.1, so mostly the last ~10 batches) once in
eval mode. While the weights still move, those averages lag them, and a codec decodes in eval
mode with statistics that belong to slightly older weights. "Precise BN" (Wu & Johnson,
"Rethinking 'Batch' in BatchNorm", 2021, §3) recomputes them after training, with the weights
frozen, as the plain average over many batches: E[μ_B] and E[σ²_B] (unbiased), the population
statistics the layer is meant to hold.

For DPLC this matters because realism is a statement about the *deployed* codec: the held-out
latent MMD that the realism constraint holds down is measured with batch statistics during
training, and the evaluate stage measures the finished codec in eval mode.

>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3)).eval()
>>> x = 5.0 + 2.0 * torch.randn(4096, 3, generator=torch.Generator().manual_seed(0))
>>> float(net[1].running_mean.abs().max())  # never trained: the default statistics
0.0
>>> batches = iter(x.split(256))
>>> recalibrate(net, lambda: net(next(batches)), batches=16)
1
>>> ref = net[0](x).detach()
>>> bool(torch.allclose(net[1].running_mean, ref.mean(0), atol=1e-4))
True
>>> net.training
False
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batchnorm_layers(module: nn.Module, skip: tuple[str, ...] = ()) -> list[_BatchNorm]:
    """The BatchNorm layers of ``module`` that track running statistics, except those whose
    qualified name starts with one of ``skip`` (a frozen part such as DPLC's G*)."""
    return [
        m
        for name, m in module.named_modules()
        if isinstance(m, _BatchNorm) and m.track_running_stats and not name.startswith(skip)
    ]


@torch.no_grad()
def recalibrate(module: nn.Module, forward: Callable[[], object], batches: int,
                skip: tuple[str, ...] = ()) -> int:  # fmt: skip
    """Replace the running mean and variance of ``module``'s BatchNorm layers (but those named
    in ``skip``) by their average over ``batches`` calls of ``forward`` (Wu & Johnson 2021).

    ``forward`` runs one batch through ``module`` (it chooses the data and any noise). During
    the passes only the recalibrated layers are in training mode (``momentum=None``: PyTorch's
    cumulative average), every other layer in eval mode, and no gradient is kept. ``module``
    is left in eval mode with the weights untouched; returns the number of layers recalibrated.
    """
    if batches < 1:
        raise ValueError(f"recalibrate needs at least one batch, got {batches}")
    layers = batchnorm_layers(module, skip)
    if not layers:
        return 0
    module.eval()
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    try:
        for _ in range(batches):
            forward()
    finally:
        for m, momentum in zip(layers, momenta, strict=True):
            m.momentum = momentum
        module.eval()
    return len(layers)
