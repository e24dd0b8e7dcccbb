"""The inference fast path of a codec's networks: frozen copies that run fast on a CPU.

:func:`inference_copy` folds every BatchNorm2d that follows a (transposed) convolution into
it, replaces convolutions with few outputs by :class:`NarrowConv`, and lays the weights out
channels-last in the requested dtype. The copies compute the same function as the networks up
to float rounding (``tests/test_bitstream.py`` compares them).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold each BatchNorm2d that directly follows a (transposed) convolution into it, in place.

    y = γ (conv(x) + b - μ) / sqrt(σ² + ε) + β is conv with weights scaled per output channel
    by s = γ / sqrt(σ² + ε) and bias s (b - μ) + β; the BatchNorm becomes an identity.
    """
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names[:-1], names[1:], strict=True):
            conv, bn = seq._modules[first], seq._modules[second]
            if not (
                isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(bn, nn.BatchNorm2d)
            ):
                continue
            assert bn.running_var is not None and bn.running_mean is not None
            scale = (bn.weight if bn.affine else 1.0) / torch.sqrt(bn.running_var + bn.eps)
            shift = (bn.bias if bn.affine else 0.0) - bn.running_mean * scale
            shape = (1, -1, 1, 1) if isinstance(conv, nn.ConvTranspose2d) else (-1, 1, 1, 1)
            with torch.no_grad():
                conv.weight.mul_(scale.reshape(shape))
                bias = conv.bias if conv.bias is not None else torch.zeros_like(scale)
                conv.bias = nn.Parameter(bias * scale + shift)
            seq._modules[second] = nn.Identity()
    return module


class NarrowConv(nn.Module):
    """A stride-1 'same' convolution with few output channels (G's last layer) for inference.

    Computed as one matrix product y = x W (every input pixel times every tap) and a sum of
    k² shifted planes of y, out[i, j] = b + Σ_ab y[i + a - p, j + b - p, a, b], faster on a CPU
    than the library convolution, which is slow for 1-3 outputs (reports/design_measurements.md).
    """

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        cout, cin, k, _ = conv.weight.shape
        self.k, self.pad, self.cout = k, k // 2, cout
        weight = conv.weight.detach().permute(1, 0, 2, 3).reshape(cin, cout * k * k)
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros(cout)
        self.register_buffer("weight", weight.contiguous())
        self.register_buffer("bias", bias.clone())

    @staticmethod
    def applies(conv: nn.Module) -> bool:
        """Whether ``conv`` is a plain odd-kernel 'same' convolution with at most 4 outputs."""
        return (
            type(conv) is nn.Conv2d
            and conv.out_channels <= 4
            and conv.groups == 1
            and conv.stride == (1, 1)
            and conv.dilation == (1, 1)
            and conv.padding_mode == "zeros"
            and conv.kernel_size[0] == conv.kernel_size[1]
            and conv.kernel_size[0] % 2 == 1
            and conv.padding == (conv.kernel_size[0] // 2,) * 2
        )

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        k, p = self.k, self.pad
        y = x.float().permute(0, 2, 3, 1).reshape(n * h * w, c) @ self.weight.float()
        y = y.view(n, h, w, self.cout, k, k).permute(0, 3, 4, 5, 1, 2)
        y = nn.functional.pad(y, (p, p, p, p))
        out = self.bias.float().view(1, -1, 1, 1).expand(n, self.cout, h, w).clone()
        for a in range(k):
            for b in range(k):
                out += y[:, :, a, b, a : a + h, b : b + w]
        return out.to(x.dtype)


def _narrow_convs(module: nn.Module) -> nn.Module:
    """Replace every convolution that :meth:`NarrowConv.applies` to, in place."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if NarrowConv.applies(child):
                setattr(parent, name, NarrowConv(child))
    return module


def inference_copy(module: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A frozen copy of ``module``: BatchNorm folded, narrow convolutions, ``dtype``, channels-last."""
    frozen = fold_batchnorm(copy.deepcopy(module).eval()).requires_grad_(False)
    frozen = _narrow_convs(frozen).to(dtype)
    return frozen.to(memory_format=torch.channels_last)
