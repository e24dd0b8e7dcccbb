"""The codec object built from trained parts: ``encode`` -> symbols, ``decode(symbols, seed)``.

A :class:`Codec` is the per-rate deliverable of every rate method (``dplc``, ``gc``, ``cae``):

* ``encode(images)`` maps images in [-1, 1] of shape (N, channels, H, W) to integer symbols of
  shape (N, C, 4, 4), each in ``0..L-1`` (the quantized code of Tschannen et al. 2018).
* ``decode(symbols, seed)`` maps symbols back to images. The decoder-side noise is drawn from a
  ``torch.Generator`` seeded with ``seed``, so the same symbols and seed give bit-identical
  images on the CPU, and different seeds give different images wherever the codec uses noise.
* ``sample(n, seed)`` draws ``n`` images G(z), z ~ N(0, I): the generator's own samples.

Four modes exist:

``map``    B(code, noise) then G: the general case (any C, with or without noise).
``shared`` as ``map``, and the encoder reads the decoder's noise too, E(x, u) (``dplc_shared``:
           common randomness; a file's seed and an image's index give both sides the same u).
``dither`` as ``map``, with subtractive dither: the noise also holds d ~ U[-Δ/2, Δ/2] per code
           value, the code is Q(E(x) + d) and B reads Q(E(x) + d) - d (Ziv 1985; Theis &
           Agustsson 2021); ``dplc_shared`` with ``shared_form: dither``.
``prior``  C = 0 for ``dplc``: the latent is z ~ N(0, I) itself, so decodes are G*'s samples.
``mean``   C = 0 for ``cae``: the decode is the training mean, the MSE-optimal constant.

Save and load use a JSON description plus safetensors weights, never pickle.

>>> import numpy as np, torch
>>> from dplc.config import NetConfig
>>> from dplc.nets import Generator
>>> net = NetConfig(width=8, latent_dim=16, code_channels=0)
>>> codec = Codec(net, Generator(net), mode="prior").eval()
>>> a = codec.decode(np.zeros((2, 0, 4, 4), np.uint8), seed=1)
>>> b = codec.decode(np.zeros((2, 0, 4, 4), np.uint8), seed=1)
>>> bool(torch.equal(a, b)), tuple(a.shape)
(True, (2, 1, 32, 32))
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from dplc import fused
from dplc import noise as noise_lib
from dplc.config import CODE_GRID, NetConfig, from_dict, to_dict
from dplc.folder import CODEC_FILE, WEIGHTS_FILE
from dplc.nets import Encoder, Generator, StochasticMap
from dplc.quantize import Quantizer

CODEC_FORMAT = "dplc-codec"
CODEC_VERSION = 1
MODES = ("map", "prior", "mean", "shared", "dither")
MAP_MODES = ("map", "shared", "dither")
"""The modes that decode through B(code, noise)."""
SHARED_MODES = {"encoder": "shared", "dither": "dither"}
"""The codec mode of each :data:`dplc.config.SHARED_FORMS` entry: the modes whose encoder and
decoder share the noise."""


class CodecInputError(ValueError):
    """Images or symbols of the wrong shape, dtype or range for this codec."""


class ConstantImage(nn.Module):
    """A decoder that ignores its latent and outputs one stored image (the CAE at rate 0)."""

    def __init__(self, net: NetConfig) -> None:
        super().__init__()
        self.register_buffer("image", torch.zeros(net.image_shape))
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))

    def update(self, batch: Tensor) -> None:
        """Running mean of every image seen so far (the MSE-optimal constant)."""
        n = batch.shape[0]
        total = self.count + n
        self.image.add_((batch.detach().float().mean(0) - self.image) * (n / total).float())
        self.count.fill_(total)

    def forward(self, z: Tensor) -> Tensor:
        return self.image.unsqueeze(0).expand(z.shape[0], *self.image.shape)


class Codec(nn.Module):
    """Encoder E, quantizer, stochastic map B and generator G of one rate (see module doc)."""

    def __init__(
        self,
        net: NetConfig,
        generator: nn.Module,
        encoder: Encoder | None = None,
        bmap: StochasticMap | None = None,
        mode: str = "map",
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"unknown codec mode {mode!r}; choose one of {MODES}")
        if mode in MAP_MODES and bmap is None:
            raise ValueError(f"mode {mode!r} needs the stochastic map B")
        if mode == "shared" and (net.code_channels == 0 or net.noise_channels == 0):
            raise ValueError("mode 'shared' needs code channels and decoder noise to share")
        if mode == "dither" and net.code_channels == 0:
            raise ValueError("mode 'dither' needs code channels to dither")
        if mode in ("prior", "mean") and net.code_channels != 0:
            raise ValueError(f"mode {mode!r} is the rate-0 decoder; it needs code_channels = 0")
        if net.code_channels > 0 and encoder is None:
            raise ValueError("a codec with code_channels > 0 needs an encoder")
        self.net = net
        self.mode = mode
        self.meta = dict(meta or {})
        self.encoder = encoder
        self.bmap = bmap
        self.generator = generator
        self.quantizer = Quantizer(net.levels)

    # ----------------------------------------------------------------- geometry
    @property
    def bits_per_image(self) -> float:
        """Fixed-length bits of one image's code (Tschannen et al. 2018)."""
        return self.net.bits_per_image

    @property
    def stochastic(self) -> bool:
        """True when decodes depend on the seed."""
        return (self.mode in ("prior", "dither")
                or (self.mode in MAP_MODES and self.net.noise_channels > 0))  # fmt: skip

    @property
    def shares_noise(self) -> bool:
        """True when the encoder uses the decoder's noise (modes ``shared`` and ``dither``):
        encoding needs the noise the decoder will draw, and another seed decodes a wrong image,
        not another sample."""
        return self.mode in SHARED_MODES.values()

    @property
    def dither_channels(self) -> int:
        """Channels of subtractive dither after B's noise channels (C in mode ``dither``, else 0)."""
        return self.net.code_channels if self.mode == "dither" else 0

    def _split(self, noise: Tensor) -> tuple[Tensor, Tensor | None]:
        """(B's noise u, the dither d or None) of a noise tensor (mode ``dither``: u ⊕ d)."""
        if self.mode != "dither":
            return noise, None
        k = self.net.noise_channels
        return noise[:, :k], noise[:, k:]

    def _check_images(self, images: Tensor) -> None:
        expected = self.net.image_shape
        if not isinstance(images, Tensor):
            raise CodecInputError(f"images must be a torch.Tensor, got {type(images).__name__}")
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise CodecInputError(
                f"images must have shape (N, {', '.join(map(str, expected))}), "
                f"got {tuple(images.shape)}"
            )
        if not images.is_floating_point():
            raise CodecInputError(f"images must be floating point in [-1, 1], got {images.dtype}")

    def _check_symbols(self, symbols: np.ndarray) -> np.ndarray:
        symbols = np.asarray(symbols)
        expected = self.net.code_shape
        if symbols.ndim != 4 or tuple(symbols.shape[1:]) != expected:
            raise CodecInputError(
                f"symbols must have shape (N, {', '.join(map(str, expected))}), got {symbols.shape}"
            )
        if not np.issubdtype(symbols.dtype, np.integer):
            raise CodecInputError(f"symbols must be integers, got {symbols.dtype}")
        if symbols.size and (symbols.min() < 0 or symbols.max() >= self.net.levels):
            raise CodecInputError(f"symbols must lie in [0, {self.net.levels - 1}]")
        return symbols

    # ------------------------------------------------------------ differentiable
    def code(self, images: Tensor, noise: Tensor | None = None) -> Tensor:
        """Quantized code values (N, C, 4, 4), straight-through differentiable; ``noise`` is the
        decoder's noise, which the encoder of a ``shared`` codec reads (others ignore it)."""
        if self.net.code_channels == 0 or self.encoder is None:
            return images.new_zeros(images.shape[0], *self.net.code_shape)
        if self.shares_noise:
            if noise is None:
                raise CodecInputError("this codec shares its noise with the decoder: pass it")
            return self.quantizer(self._pre_quantizer(self.encoder, images, noise))
        return self.quantizer(self.encoder(images))

    def _pre_quantizer(self, encoder: nn.Module, images: Tensor, noise: Tensor) -> Tensor:
        """What a shared-noise codec quantizes: E(x, u) (``shared``) or E(x) + d (``dither``)."""
        noise = noise.to(images.device, images.dtype)
        if self.mode == "dither":
            return encoder(images) + self._split(noise)[1]
        return encoder(images, noise)

    def draw_noise(
        self, n: int, generator: torch.Generator | None = None, device: torch.device | None = None
    ) -> Tensor:
        """Decoder noise for ``n`` images: U[-Δ/2, Δ/2] on the 4x4 grid (B's noise channels, then
        the dither's in mode ``dither``), or N(0, I) in prior mode; drawn from a CPU generator
        and then moved to ``device`` when given."""
        if self.mode == "prior":
            return torch.randn(n, self.net.latent_dim, generator=generator).to(device)
        shape = (n, self.net.noise_channels + self.dither_channels, *self.net.code_shape[1:])
        return ((torch.rand(shape, generator=generator) - 0.5) * self.quantizer.step).to(device)

    @property
    def noise_spec(self) -> noise_lib.NoiseSpec:
        """The per-image decoder noise (:func:`dplc.noise.spec_for`), as :meth:`draw_noise`."""
        net = self.net
        mode = "map" if self.mode in MAP_MODES else self.mode
        channels = net.noise_channels + self.dither_channels
        return noise_lib.spec_for(mode, net.latent_dim, channels, CODE_GRID, self.quantizer.step)

    def shared_noise(self, seed: int, n: int) -> np.ndarray | None:
        """The noise the encoder of a ``shared`` codec reads for images 0..n-1 of a file with
        ``seed`` (:func:`dplc.noise.draw`, the decoder's own draw); None for other codecs."""
        return noise_lib.draw(self.noise_spec, int(seed), n) if self.shares_noise else None

    def latent(self, code: Tensor, noise: Tensor) -> Tensor:
        """z = B(code, noise) (or the noise itself in prior mode); in mode ``dither``
        z = B(code - d, u) with (u, d) the two parts of ``noise``."""
        if self.mode == "prior":
            return noise.to(code.device)
        if self.mode == "mean":
            return code.new_zeros(code.shape[0], self.net.latent_dim)
        assert self.bmap is not None
        return self._bmap(self.bmap, code, noise.to(code.device, code.dtype))

    def _bmap(self, bmap: nn.Module, code: Tensor, noise: Tensor) -> Tensor:
        u, d = self._split(noise)
        return bmap(code if d is None else code - d, u)

    def reconstruct(self, images: Tensor, noise: Tensor | None = None) -> Tensor:
        """G(B(Q(E(x)), u)) in one differentiable pass (training and evaluation)."""
        if noise is None:
            noise = self.draw_noise(images.shape[0]).to(images.device)
        return self.generator(self.latent(self.code(images, noise), noise))

    def _check_noise(self, noise: np.ndarray, n: int) -> Tensor:
        spec = self.noise_spec
        shape = (n, *spec.shape)
        arr = np.asarray(noise, dtype=np.float32)
        if arr.shape != shape:
            raise CodecInputError(f"noise must have shape {shape} ({spec.kind}), got {arr.shape}")
        return torch.from_numpy(np.ascontiguousarray(arr))

    # ------------------------------------------------------------------- codec API
    @torch.no_grad()
    def encode(
        self,
        images: Tensor,
        batch_size: int = 1024,
        fused: bool = False,
        noise: np.ndarray | None = None,
    ) -> np.ndarray:
        """Images (N, channels, H, W) in [-1, 1] -> symbols (N, C, 4, 4) as uint8.

        ``fused=True`` runs the encoder's inference copy (:meth:`inference_nets`) in chunks of
        128 images; a code value within float rounding of a quantizer boundary may then snap
        to the other side, so the symbols can differ (rarely) from the reference ones.
        ``noise`` (N, *:attr:`noise_spec` shape) is the decoder noise the images will be decoded
        with: a ``shared`` codec needs it (:attr:`shares_noise`), the others ignore it.
        """
        self._check_images(images)
        n = images.shape[0]
        out = np.zeros((n, *self.net.code_shape), dtype=np.uint8)
        if self.shares_noise and noise is None:
            raise CodecInputError(
                "this codec shares its noise with the decoder: encode with the noise the file "
                "will be decoded with (noise=dplc.noise.draw(codec.noise_spec, seed, n))"
            )
        if self.net.code_channels == 0 or n == 0:
            return out
        assert self.encoder is not None
        noise_t = self._check_noise(noise, n) if self.shares_noise else None
        encoder = self.inference_nets()["encoder"] if fused else self.encoder
        step = min(batch_size, 128) if fused else batch_size
        for i in range(0, n, step):
            chunk = images[i : i + step].float()
            code = (encoder(chunk) if noise_t is None
                    else self._pre_quantizer(encoder, chunk, noise_t[i : i + step]))  # fmt: skip
            out[i : i + step] = self.quantizer.to_symbols(code).numpy()
        return out

    @torch.no_grad()
    def decode(
        self,
        symbols: np.ndarray,
        seed: int = 0,
        batch_size: int = 1024,
        precision: str = "fp32",
        fused: bool = False,
        noise: np.ndarray | None = None,
    ) -> Tensor:
        """Symbols (N, C, 4, 4) -> images (N, channels, H, W) in [-1, 1]; noise seeded by ``seed``.

        ``noise`` (N, *:attr:`noise_spec` shape), when given, is the decoder noise itself (a
        ``.dplc`` file's counter-based draw, :mod:`dplc.noise`) and ``seed`` is ignored.

        ``fused=True`` runs B and G as an inference copy (:meth:`inference_nets`: BatchNorm
        folded into the convolutions, channels-last, chunks of 64 images), about twice as fast
        on a CPU and equal to the reference up to float rounding. ``precision="bf16"`` runs in
        bf16 (autocast, or a bf16 inference copy when fused). The noise is the same either way.
        """
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        symbols = self._check_symbols(symbols)
        n = symbols.shape[0]
        if noise is None:
            noise_t = self.draw_noise(n, torch.Generator().manual_seed(int(seed)))
        else:
            noise_t = self._check_noise(noise, n)
        values = self.quantizer.from_symbols(torch.from_numpy(symbols.astype(np.int64)))
        if fused and self.mode != "mean":
            dtype = torch.bfloat16 if precision == "bf16" else torch.float32
            nets = self.inference_nets(dtype)
            bmap = nets["bmap"] if self.mode in MAP_MODES else None
            generator = nets["generator"]
            step = min(batch_size, 64)
            outs = []
            for i in range(0, n, step):
                z = noise_t[i : i + step].to(dtype)
                if bmap is not None:
                    z = self._bmap(bmap, values[i : i + step].to(dtype), z)
                outs.append(generator(z).float())
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                outs = [
                    self.generator(
                        self.latent(values[i : i + batch_size], noise_t[i : i + batch_size])
                    )
                    for i in range(0, n, batch_size)
                ]
        if not outs:
            return torch.zeros(0, *self.net.image_shape)
        return torch.cat(outs).float().contiguous()

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0) -> Tensor:
        """``n`` generator samples G(z), z ~ N(0, I) (the training mean in mode 'mean')."""
        gen = torch.Generator().manual_seed(int(seed))
        z = torch.randn(n, self.net.latent_dim, generator=gen)
        return self.generator(z).float()

    # ------------------------------------------------------------------ persistence
    def describe(self) -> dict[str, Any]:
        """The JSON description that, with the weights, rebuilds this codec."""
        return {
            "format": CODEC_FORMAT,
            "version": CODEC_VERSION,
            "mode": self.mode,
            "net": to_dict(self.net),
            "has_encoder": self.encoder is not None,
            "has_bmap": self.bmap is not None,
            "meta": self.meta,
        }

    def weights_hash(self) -> str:
        """SHA-256 over every tensor of the state dict (names, shapes, dtypes, bytes)."""
        h = hashlib.sha256()
        for name, t in sorted(self.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Write ``codec.json`` and ``weights.safetensors`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(d / WEIGHTS_FILE))
        desc = self.describe() | {"weights_sha256": self.weights_hash()}
        (d / CODEC_FILE).write_text(json.dumps(desc, indent=2, sort_keys=True))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> Codec:
        """Rebuild a codec saved by :meth:`save` (no pickle: JSON + safetensors)."""
        d = Path(directory)
        desc_path, weights_path = d / CODEC_FILE, d / WEIGHTS_FILE
        for p in (desc_path, weights_path):
            if not p.is_file():
                raise FileNotFoundError(f"not a saved dplc codec: {p} is missing")
        desc = json.loads(desc_path.read_text())
        if desc.get("format") != CODEC_FORMAT:
            raise ValueError(f"{desc_path} is not a dplc codec description")
        if int(desc.get("version", -1)) > CODEC_VERSION:
            raise ValueError(
                f"{desc_path} has codec version {desc['version']}; this dplc reads <= {CODEC_VERSION}"
            )
        codec = build_codec(from_dict(NetConfig, desc["net"]), desc["mode"], desc.get("meta"))
        codec.load_state_dict(load_file(str(weights_path)))
        codec.eval()
        expected = desc.get("weights_sha256")
        if expected and codec.weights_hash() != expected:
            raise ValueError(f"{weights_path} does not match the hash recorded in codec.json")
        return codec

    # ------------------------------------------------------------- fast inference
    def inference_nets(self, dtype: torch.dtype = torch.float32) -> dict[str, nn.Module]:
        """Frozen copies of E, B and G for :meth:`encode` / :meth:`decode` with ``fused=True``.

        Keys ``encoder``, ``bmap`` and ``generator``, for the parts this codec has. Every
        BatchNorm2d that follows a convolution is folded into its weights (eval-mode
        statistics), convolutions with few outputs become :class:`dplc.fused.NarrowConv`, and the weights
        are cast to ``dtype`` in channels-last layout. The copies are cached and rebuilt when
        any weight or buffer of the codec changes.
        """
        key = (dtype, tuple((id(t), t._version) for t in self.state_dict(keep_vars=True).values()))
        cached = getattr(self, "_inference_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        parts = {"encoder": self.encoder, "bmap": self.bmap, "generator": self.generator}
        nets = {name: fused.inference_copy(m, dtype) for name, m in parts.items() if m is not None}
        self._inference_cache = (key, nets)
        return nets


def build_codec(net: NetConfig, mode: str, meta: dict[str, Any] | None = None) -> Codec:
    """A fresh codec of the given geometry and mode (weights initialised, untrained)."""
    noise_in = net.noise_channels if mode == "shared" else 0
    encoder = Encoder(net, "code", noise_in) if net.code_channels > 0 else None
    bmap = StochasticMap(net) if mode in MAP_MODES else None
    generator: nn.Module = ConstantImage(net) if mode == "mean" else Generator(net)
    return Codec(net, generator, encoder=encoder, bmap=bmap, mode=mode, meta=meta)
