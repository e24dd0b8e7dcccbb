"""A trained codec as it travels: the model, its entropy model, its registered name and version.

The registry (:func:`dplc.registry.load_codec`), evaluation
(:func:`dplc.evaluation.evaluate_codec`), the MLflow ``pyfunc`` wrapper and the pipeline's
stages pass one :class:`CodecBundle` around instead of the pieces; the name and version it
carries are what every file it writes names in its header.

>>> import numpy as np, tempfile, torch
>>> from dplc.codec import build_codec
>>> from dplc.config import NetConfig
>>> from dplc.entropy import EntropyModel
>>> _ = torch.manual_seed(0)
>>> folder = tempfile.mkdtemp()
>>> _ = build_codec(NetConfig(width=8, latent_dim=16, code_channels=2), "map").eval().save(folder)
>>> _ = EntropyModel.uniform(channels=2, levels=2).save(folder)
>>> bundle = CodecBundle.load(folder, name="doc-codec", version=3)
>>> images = np.random.default_rng(0).integers(0, 256, (2, 28, 28, 1), dtype=np.uint8)
>>> blob = bundle.compress(images, seed=7)
>>> bundle.decompress(blob).shape
(2, 28, 28, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dplc import files, folder
from dplc.codec import Codec
from dplc.data import to_float
from dplc.entropy import EntropyModel, load_entropy_model

ENTROPY_FIT_IMAGES = 20_000
"""How many training images a codec's entropy model is counted on (:func:`fit_entropy_model`)."""


def fit_entropy_model(codec: Codec, images: torch.Tensor, limit: int = ENTROPY_FIT_IMAGES) -> EntropyModel:
    """The per-channel symbol model of ``codec`` counted on the first ``limit`` of ``images``
    (uint8, N×C×H×W). A shared-noise codec's symbols depend on u: they are counted with the
    noise a file of seed 0 draws, random as in every file it writes (never u = 0)."""
    x = to_float(images[:limit])
    symbols = codec.encode(x, noise=codec.shared_noise(0, x.shape[0]))
    return EntropyModel.fit(symbols, codec.net.levels)


@dataclass(frozen=True)
class CodecBundle:
    """A codec with its entropy model (None: fixed-length payloads only) and its identity."""

    codec: Codec
    entropy: EntropyModel | None
    name: str
    version: int = 0

    @classmethod
    def load(cls, path: str | Path, name: str | None = None, version: int = 0) -> CodecBundle:
        """The codec folder at ``path`` (or the codec folder inside an exported MLflow model,
        :func:`dplc.folder.resolve`); ``name`` defaults to the folder's name."""
        codec_dir = folder.resolve(Path(path))
        return cls(Codec.load(codec_dir), load_entropy_model(codec_dir), name or Path(path).name, version)

    def compress(self, images: np.ndarray, seed: int = 0, mode: str = "ans") -> bytes:
        """uint8 images (N, H, W, channels) -> one ``.dplc`` file naming this bundle
        (:func:`dplc.files.compress`)."""
        return files.compress(self.codec, self.entropy, images, self.name, self.version, seed, mode)

    def decompress(self, data: bytes, seed: int | None = None) -> np.ndarray:
        """A ``.dplc`` file -> uint8 images (:func:`dplc.files.decompress`; ``seed`` None: the
        header's)."""
        return files.decompress(data, self.codec, self.entropy, seed)
