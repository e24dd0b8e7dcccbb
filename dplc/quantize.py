"""The scalar quantizer of the code (Tschannen et al. 2018); its fixed-length rate is
:attr:`dplc.config.NetConfig.bits_per_image`.

L levels with centres ``c_l = -1 + Δ/2 + lΔ``, ``Δ = 2/L``. The forward pass snaps each value
to its nearest centre; the backward pass differentiates the soft assignment
``Σ_l c_l · softmax_l(-σ (x - c_l)²)`` (Mentzer et al. 2018, Agustsson et al. 2017), the
straight-through trick of the paper's code.

>>> import torch
>>> q = Quantizer(levels=2)
>>> q.centers.tolist()
[-0.5, 0.5]
>>> q(torch.tensor([-0.9, -0.1, 0.2, 3.0])).tolist()
[-0.5, -0.5, 0.5, 0.5]
>>> q.to_symbols(torch.tensor([-0.9, 0.2])).tolist()
[0, 1]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def centers(levels: int) -> Tensor:
    """The L quantization centres -1 + Δ/2 + lΔ with Δ = 2/L."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    delta = 2.0 / levels
    return torch.tensor([-1.0 + delta / 2 + i * delta for i in range(levels)])


class Quantizer(nn.Module):
    """Hard-forward / soft-backward scalar quantizer with ``levels`` centres."""

    def __init__(self, levels: int, sigma: float = 1.0) -> None:
        super().__init__()
        self.levels = levels
        self.sigma = sigma
        self.register_buffer("centers", centers(levels), persistent=False)

    @property
    def step(self) -> float:
        """Δ = 2 / L, the width of a quantization cell."""
        return 2.0 / self.levels

    def soft(self, x: Tensor) -> Tensor:
        """Σ_l c_l softmax_l(-σ (x - c_l)²): the differentiable surrogate."""
        d = -self.sigma * (x.unsqueeze(-1) - self.centers.to(x.dtype)) ** 2
        return (torch.softmax(d, dim=-1) * self.centers.to(x.dtype)).sum(-1)

    def hard(self, x: Tensor) -> Tensor:
        """Nearest centre of every value (NaN stays NaN, so a broken encoder shows in the loss)."""
        snapped = self.centers.to(x.dtype)[self.to_symbols(x)]
        return torch.where(torch.isnan(x), x, snapped)

    def forward(self, x: Tensor) -> Tensor:
        """Hard values in the forward pass, gradients of :meth:`soft` in the backward pass."""
        soft = self.soft(x)
        return self.hard(x).detach() + (soft - soft.detach())  # exactly hard; gradient of soft

    def to_symbols(self, x: Tensor) -> Tensor:
        """Index (0..L-1) of the nearest centre, as int64."""
        idx = torch.floor((x.detach().float() + 1.0) / self.step)
        return torch.nan_to_num(idx, nan=0.0).clamp_(0, self.levels - 1).long()

    def from_symbols(self, symbols: Tensor) -> Tensor:
        """Centre value of every symbol; raises on a symbol outside 0..L-1."""
        if symbols.numel() and (int(symbols.min()) < 0 or int(symbols.max()) >= self.levels):
            raise ValueError(f"symbols must lie in [0, {self.levels - 1}]")
        return self.centers[symbols.long()]
