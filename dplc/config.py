"""Typed configuration: the dataclasses that params.yaml is parsed into.

Every knob of the library lives in one of three frozen dataclasses:

* :class:`NetConfig` -- the architecture (image geometry, width, latent size, code shape).
* :class:`MethodConfig` -- the objective and its optimiser (Tschannen et al. 2018).
* :class:`LoopConfig` -- the single-process training loop (steps, seed, checkpoints).

They are built from plain dictionaries with :func:`from_dict`, which rejects unknown keys so a
typo in params.yaml is an error rather than a silently ignored setting.

>>> net = from_dict(NetConfig, {"image_size": 32, "channels": 1, "code_channels": 4})
>>> net.code_shape, net.bits_per_image
((4, 4, 4), 64.0)
>>> from_dict(NetConfig, {"widht": 3})
Traceback (most recent call last):
...
dplc.config.ConfigError: NetConfig: unknown key(s) ['widht']; known: ['channels', 'code_channels', 'critic_width', 'image_size', 'latent_dim', 'levels', 'noise', 'width']
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dplc.method_specs import BY_NAME, METHODS

ADV_TARGETS = ("mixture", "encoded")
"""wpp's generator adversarial term: on the critic's mixture z̃, or on G(sg E(x)) (the paper)."""

REALISM_GRADS = ("decoder", "all")
"""Which of dplc's modules the realism (MMD) term trains: B only, or E and B."""

SHARED_FORMS = ("encoder", "dither")
"""How a shared-noise codec uses the decoder's noise: ``encoder``, E(x, u) reads it; ``dither``,
subtractive dither, the code is Q(E(x) + d) and the decoder reads Q(E(x) + d) - d."""

IMAGE_SIZES = (32, 64)
"""The network image sizes S (Tschannen et al. 2018: 64; 32 for 28x28 sources)."""
CHANNELS = (1, 3)
"""Grey or colour images."""
MAX_LEVELS = 256
"""Quantizer levels L are 2..MAX_LEVELS (one byte per symbol)."""

CODE_GRID = 4
"""The code is C x 4 x 4 scalars at every resolution (Tschannen et al. 2018)."""


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


@dataclass(frozen=True)
class NetConfig:
    """Architecture of E, B, G and the critic (Tschannen et al. 2018).

    ``width`` is the narrowest conv width; the others are multiples of it (the 64x64 paper nets
    are ``width=64``: 64-128-256-512). ``code_channels`` is C, the number of quantized channels
    on the 4x4 grid, so the fixed-length rate is ``C * 16 * log2(levels)`` bits per image.
    ``noise`` says whether the decoder map B receives uniform noise (False for the CAE).
    ``critic_width`` is the critic's narrowest width (0: the same as ``width``); the gradient
    penalty's double backward makes the critic the dearest net on a CPU.
    """

    image_size: int = 32
    channels: int = 1
    width: int = 32
    latent_dim: int = 32
    levels: int = 2
    code_channels: int = 0
    noise: bool = True
    critic_width: int = 0

    def __post_init__(self) -> None:
        if self.image_size not in IMAGE_SIZES:
            raise ConfigError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size}")
        if self.channels not in CHANNELS:
            raise ConfigError(f"channels must be one of {CHANNELS}, got {self.channels}")
        if self.width < 1 or self.latent_dim < 1:
            raise ConfigError("width and latent_dim must be positive")
        if not 2 <= self.levels <= MAX_LEVELS:
            raise ConfigError(f"levels must be in [2, {MAX_LEVELS}], got {self.levels}")
        if self.critic_width < 0:
            raise ConfigError(
                f"critic_width must be >= 0 (0: same as width), got {self.critic_width}"
            )
        if self.code_channels < 0:
            raise ConfigError(f"code_channels must be >= 0, got {self.code_channels}")

    @property
    def noise_channels(self) -> int:
        """Channels of decoder noise on the 4x4 grid: ceil(m / 16) (Tschannen et al. 2018), 0 without noise."""
        return math.ceil(self.latent_dim / (CODE_GRID * CODE_GRID)) if self.noise else 0

    @property
    def code_shape(self) -> tuple[int, int, int]:
        """Shape (C, 4, 4) of one image's code."""
        return (self.code_channels, CODE_GRID, CODE_GRID)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape (channels, H, W) of one image."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def bits_per_image(self) -> float:
        """Fixed-length rate: C * 16 * log2(L) bits (Tschannen et al. 2018)."""
        return self.code_channels * CODE_GRID * CODE_GRID * math.log2(self.levels)


@dataclass(frozen=True)
class MethodConfig:
    """Objective and optimiser settings of one method (Tschannen et al. 2018).

    Defaults are the authors' 64x64 CelebA settings for ``wpp``; see :func:`method_defaults`
    for the per-method ones. ``lambda_adv`` multiplies the critic term of ``wpp``;
    ``lambda_rate`` the MMD term of ``dplc``; ``lambda_gan`` the GAN term of ``gc``.
    ``ema_decay`` > 0 keeps an exponential moving average of the generator's weights for the
    generative methods (wgan_gp, wae, wpp); the average is what G* exports (Yazıcı et al. 2019,
    "The Unusual Effectiveness of Averaging in GAN Training"). 0 (the authors' setting) is off.
    """

    name: str = "wpp"
    batch_size: int = 256
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.999)
    lr_decay_at: tuple[float, ...] = (0.6, 0.85)
    lr_decay: float = 0.4
    lambda_mmd: float = 100.0
    lambda_adv: float = 2.5e-5
    lambda_rate: float = 300.0
    lambda_gan: float = 1e-2
    n_critic: int = 5
    gp_weight: float = 10.0
    critic_lr: float = 1e-4
    critic_betas: tuple[float, float] = (0.5, 0.9)
    critic_batch_size: int = 64
    mmd_scales: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
    ema_decay: float = 0.0
    adv_target: str = "encoded"
    """wpp's generator adversarial term: ``encoded`` (−f(G(sg E(x))), the term as the paper
    writes it; the default, docs/method.md) or ``mixture`` (−f(G(z̃)) on the critic's own
    mixture z̃)."""
    mmd_epsilon: float = 2.0
    """dplc's realism constraint: held-out latent MMD ≤ ``mmd_epsilon`` null standard deviations,
    enforced by dual ascent on λ_rate (``lambda_rate`` is its start); 0 keeps λ_rate fixed. The
    dual settles where the *mean* reading meets ε, so ε must lie above the reading's plateau
    (docs/realism.md, "A dual the low rates can meet")."""
    dual_every: int = 50
    """Steps between two held-out MMD measurements (and λ updates)."""
    dual_step: float = 0.1
    """η of the dual update log λ ← log λ + η·clip(MMD_sd − ε): small enough that λ averages
    several readings' noise."""
    realism_holdout: int = 2000
    """Training images held out of dplc's batches to measure the latent MMD on."""
    realism_draws: int = 4
    """Noise draws per code in dplc's MMD term: B's marginal seen through more latents a step
    (with one draw B stopped using the code: docs/realism.md, reports/design_measurements.md)."""
    realism_independent_pairs: bool = False
    """Leave pairs of draws of one code out of the MMD's x–x term (the unbiased estimate of the
    marginal's MMD). Off by default: the same-code pairs act as a repulsion that keeps B
    spreading its noise, while the unbiased term let λ_rate run away and B drop the code
    (docs/realism.md, reports/design_measurements.md)."""
    realism_images: int = 0
    """> 0: the MMD term sees B's latents for this many fresh training images, one noise draw
    each (the plain unbiased estimate of B's marginal at that many distinct codes; their codes
    are computed without gradient under ``realism_grad == 'decoder'``), instead of the step's
    batch with ``realism_draws`` draws per code (which must then be 1)."""
    realism_grad: str = "decoder"
    """Where the MMD term's gradient goes: ``decoder`` (B only; the code is detached in the
    MMD path, so E learns from distortion alone) or ``all`` (E through the quantizer too)."""
    shared_form: str = "encoder"
    """``dplc_shared``'s use of the shared noise, one of :data:`SHARED_FORMS`."""
    free_fraction: float = 0.0
    """dplc: this fraction of the run's steps, first, trains for distortion alone (no realism
    term, λ_rate held); the rest start from the codec they reach, with a fresh optimiser and
    schedule, under the realism constraint. B then starts from the free decode and moves it onto
    the prior, which a B without noise (``noise: false``) must do to meet the constraint
    (docs/realism.md, "Where the MSE goes at 1,024 bits"). 0: the constraint from the first step."""
    settle_fraction: float = 0.0
    """dplc: this fraction of the run's steps, last, trains again under the constraint from the
    codec the constrained phase reached: a fresh Adam at the learning rate that phase's decays
    left, with a schedule of its own, and λ_rate back at its start (``lambda_rate``), so the dual
    settles where distortion counts instead of keeping the overshoot of the high learning rate
    (docs/realism.md, "Trained on at the final learning rate, the dual restarted"). 0: no such
    phase."""
    check_bn_batches: int = 200
    """Training batches over which dplc's held-out check re-estimates a copy's BatchNorm
    statistics before reading the held-out latents in eval mode, as the finished codec decodes
    (:meth:`dplc.rate_methods.DPLC.holdout_mmd_sd`); as many as ``bn_batches`` by default, since
    statistics from fewer images read exact N(0, I) latents high. 0: the copy reads in training
    mode, where BatchNorm standardises the held-out latents with their own statistics; that
    hides their moments' sampling spread, which the null counts, and reads low (docs/realism.md,
    "The held-out check read with its own statistics")."""
    bn_batches: int = 200
    """Training batches over which dplc re-estimates E's and B's BatchNorm statistics after its
    last step (:func:`dplc.precise_bn.recalibrate`; docs/realism.md)."""

    def __post_init__(self) -> None:
        if self.adv_target not in ADV_TARGETS:
            raise ConfigError(f"adv_target must be one of {list(ADV_TARGETS)}, got {self.adv_target!r}")
        if self.realism_grad not in REALISM_GRADS:
            raise ConfigError(
                f"realism_grad must be one of {list(REALISM_GRADS)}, got {self.realism_grad!r}"
            )
        if self.shared_form not in SHARED_FORMS:
            raise ConfigError(f"shared_form must be one of {list(SHARED_FORMS)}, got {self.shared_form!r}")
        if self.mmd_epsilon < 0 or self.dual_every < 1 or self.dual_step < 0:
            raise ConfigError("mmd_epsilon and dual_step must be >= 0 and dual_every >= 1")
        if self.realism_draws < 1:
            raise ConfigError(f"realism_draws must be >= 1, got {self.realism_draws}")
        if not 0.0 <= self.free_fraction < 1.0:
            raise ConfigError(f"free_fraction must be in [0, 1), got {self.free_fraction}")
        if not 0.0 <= self.settle_fraction < 1.0 or self.free_fraction + self.settle_fraction >= 1.0:
            raise ConfigError(
                "settle_fraction must be in [0, 1) and leave the constrained phase steps "
                f"(free_fraction + settle_fraction < 1), got {self.settle_fraction} with "
                f"free_fraction {self.free_fraction}"
            )
        if self.check_bn_batches < 0:
            raise ConfigError(f"check_bn_batches must be >= 0, got {self.check_bn_batches}")
        if self.bn_batches < 1:
            raise ConfigError(f"bn_batches must be >= 1, got {self.bn_batches}")
        if self.realism_images < 0 or self.realism_images == 1:
            raise ConfigError(f"realism_images must be 0 (off) or >= 2, got {self.realism_images}")
        if self.realism_images and (self.realism_draws != 1 or self.realism_independent_pairs):
            raise ConfigError("realism_images > 0 draws one noise per image: set realism_draws: 1 "
                              "and realism_independent_pairs: false")  # fmt: skip
        if self.mmd_epsilon > 0 and self.realism_holdout < 2:
            raise ConfigError(f"realism_holdout must be >= 2, got {self.realism_holdout}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0: off), got {self.ema_decay}")
        if self.name not in METHODS:
            raise ConfigError(f"unknown method {self.name!r}; choose one of {list(METHODS)}")
        if self.batch_size < 2 or self.critic_batch_size < 2:
            raise ConfigError("batch sizes must be >= 2 (MMD needs two samples)")
        if self.n_critic < 1:
            raise ConfigError("n_critic must be >= 1")
        if any(not 0.0 < f < 1.0 for f in self.lr_decay_at):
            raise ConfigError(
                f"lr_decay_at are fractions of training in (0, 1): {self.lr_decay_at}"
            )


def method_defaults(name: str) -> dict[str, Any]:
    """The authors' hyperparameters of a method (Tschannen et al. 2018,
    :attr:`MethodSpec.defaults <dplc.method_specs.MethodSpec.defaults>`), as a dict to update
    with params."""
    if name not in BY_NAME:
        raise ConfigError(f"unknown method {name!r}; choose one of {list(METHODS)}")
    return {"name": name, **BY_NAME[name].defaults}


@dataclass(frozen=True)
class LoopConfig:
    """The single-process training loop (:func:`dplc.train.train`)."""

    steps: int = 1000
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    precision: str = "fp32"
    threads: int = 0
    progress_every_s: float = 15.0
    """Seconds between progress lines (step, losses, images/s, ETA) on stdout; 0 turns them off."""
    label: str = ""
    """The name progress lines carry (the method's name when empty)."""
    channels_last: bool = True
    """Train in the channels-last memory layout (NHWC): oneDNN's convolutions skip their layout
    reorders (the gain per method: reports/design_measurements.md). The weights return to the standard layout when the loop ends, so saved files do not depend
    on it."""

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if self.checkpoint_every < 1 or self.log_every < 1:
            raise ConfigError("checkpoint_every and log_every must be >= 1")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ConfigError(f"precision must be 'fp32', 'bf16' or 'auto', got {self.precision!r}")


@dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs: the nets, the method and the loop."""

    net: NetConfig = field(default_factory=NetConfig)
    method: MethodConfig = field(default_factory=MethodConfig)
    loop: LoopConfig = field(default_factory=LoopConfig)


T = TypeVar("T")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Convert a YAML value to the annotated field type (tuples from lists, ints to floats)."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(a, v, where) for a, v in zip(args, value, strict=True))
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _coerce(args[0], value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and mistyped values."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(hints[k], v, f"{cls.__name__}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def to_dict(obj: Any) -> dict[str, Any]:
    """A JSON/YAML-friendly dict of a config dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(obj).items()}
