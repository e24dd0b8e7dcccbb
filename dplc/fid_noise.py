"""The sampling noise of an FID: its bootstrap standard deviation over the images.

An FID between two finite image sets is an estimate; another draw of the same number of images
gives another value. Resampling both sets' feature vectors with replacement (Efron 1979,
the bootstrap) and recomputing the distance gives its spread. The Fréchet distance itself is
torch-fidelity's (``fid_features_to_statistics``, ``fid_statistics_to_metric``), on the same
features its domain-network extractor computes (:class:`dplc.featnet.FeatNetExtractor`), so the
full-set value equals the ``fid_featnet`` that :func:`dplc.metrics.fid_kid` reports.

Finding (iii) of Tschannen et al. (2018), "rFID(R) ≤ sFID", is judged with this spread
(:func:`pipelines.findings.fid_tolerance`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_features_to_statistics,
    fid_statistics_to_metric,
)

from dplc import featnet


@torch.no_grad()
def featnet_features(images: Tensor, featnet_path: str | Path, batch_size: int = 1000) -> Tensor:
    """The domain network's FID features (float64, N × 128) of uint8 or [-1, 1] images."""
    net = featnet.load_featnet(featnet_path)
    parts = [net.embed(featnet._as_float(images[i : i + batch_size])).double() for i in range(0, images.shape[0], batch_size)]
    return torch.cat(parts)


def fid(real: Tensor, fake: Tensor) -> float:
    """torch-fidelity's Fréchet distance between two feature sets (N × d each)."""
    stats = fid_features_to_statistics(real), fid_features_to_statistics(fake)
    return float(fid_statistics_to_metric(*stats, verbose=False)[KEY_METRIC_FID])


def fid_sd(real: Tensor, fake: Tensor, draws: int = 50, seed: int = 0) -> float:
    """Bootstrap s.d. of the FID: both feature sets resampled with replacement ``draws`` times.

    >>> g = torch.Generator().manual_seed(0)
    >>> a, b = torch.randn(400, 4, generator=g), torch.randn(400, 4, generator=g) + 0.5
    >>> 0 < fid_sd(a, b, draws=20) < fid(a, b)
    True
    """
    if draws < 2:
        raise ValueError(f"fid_sd needs at least 2 draws, got {draws}")
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(draws):
        i = torch.randint(0, real.shape[0], (real.shape[0],), generator=g)
        j = torch.randint(0, fake.shape[0], (fake.shape[0],), generator=g)
        values.append(fid(real[i], fake[j]))
    return float(np.std(values, ddof=1))
