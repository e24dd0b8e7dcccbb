"""A Gaussian source with a known answer: small-MLP codecs against closed-form limits.

The source is X ~ N(0, diag(σ₁², …, σ_d²)) with unequal variances; its limits of lossy
compression under MSE (D(R), D(R, 0), 2·D(R), D_K) are in :mod:`dplc.gaussian_bounds`.

The learned side trains the two codecs of the paper on it with small MLPs, sharing the
quantizer of :mod:`dplc.quantize` and the MMD of :mod:`dplc.losses`:

- ``cae``: E and a deterministic decoder D trained for MSE at C code scalars of L levels;
- ``dplc``: a generator G* trained first (a WAE: MSE + λ·MMD(E(X), N(0, I)), Tolstikhin et
  al. 2018), frozen; then per rate E and B (code ⊕ private noise → latent) trained for
  MSE(X, G*(B(E(X), U))) + λ_rate·MMD(B(·), N(0, I)), so decodes keep the source distribution.
  λ_rate ramps up linearly over the first ``rate_warmup`` of the steps (with the full weight
  from step 0 the MMD gradient, which also reaches E through the quantizer, keeps E from
  learning a useful code).
- ``dplc_shared``: DPLC whose decoder noise U is shared with the encoder (common randomness:
  the file's seed and the image's index give both the same U), in one of two forms
  (``GaussianConfig.shared``): ``encoder``, E(X, U) chooses the code knowing how B will decode
  it (U enters E's first layer through weights that start at zero, so with U zeroed at the
  encoder the codec trains exactly as the private one); ``dither``, subtractive dither, the code
  is Q(E(X) + D) − D with D ~ U[−Δ/2, Δ/2] shared. With common randomness perfect realism costs
  D(R, 0) per component instead of 2·D(R) (Zhang et al., NeurIPS 2021; Wagner 2022). A third
  form, ``polar``, trains nothing: it codes the latent of G*'s own WAE encoder with the explicit
  :mod:`dplc.polar_dither` code (:func:`dplc.gaussian_study.polar_figures`), whose decodes are
  exactly N(0, I) when the encoder's latents are.

With ``moment_weight`` > 0 DPLC's realism term adds the unbiased gap between B's first two
moments and N(0, I)'s (:func:`dplc.realism.moment_gap`) on a batch of its own, and with
``moment_holdout`` > 0 the constraint checks it on that many held-out vectors too: the IMQ
MMD cannot see a decoded variance a few percent short, which the distortion term rewards.

With ``nearest_weight`` > 0 every codec's E also learns Lloyd's nearest-neighbour condition one
bit at a time (:func:`nearest_neighbour_loss`), which the straight-through gradient alone does
not find.

The operational check is MSE_dplc / MSE_cae at the same rate and code, which should
be about 2, and the 2-Wasserstein distance between the decodes and the source;
:mod:`dplc.gaussian_study` runs every codec at every rate against the limits.

>>> cfg = GaussianConfig(variances=(1.0,), rates=(1,))
>>> cfg.bits(1)   # one code scalar of cfg.levels levels
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from dplc.config import SHARED_FORMS as LEARNED_SHARED_FORMS
from dplc.gaussian_bounds import (
    code_mmse,
    gaussian_w2_squared,
    quantile_w2_squared,
    transport_floor,
)
from dplc.losses import mmd_imq
from dplc.quantize import Quantizer, centers
from dplc.realism import (
    DualLambda,
    NullSpread,
    RunningMoments,
    latent_mmd_sd,
    latent_moment_sd,
    mmd_null,
    moment_gap,
    moment_null,
)

SHARED_FORMS = (*LEARNED_SHARED_FORMS, "polar")
"""How the Gaussian stage's ``dplc_shared`` uses the shared noise: a learned form of the image
codecs, or ``polar``, the explicit code in G*'s latent (nothing to train)."""
CODECS = ("cae", "dplc", "dplc_shared")
"""The per-rate codecs of the Gaussian experiment."""
NEAREST_ALL_CODECS = ("cae", "dplc")
"""The codecs whose nearest-neighbour term can compare every code (:attr:`GaussianConfig.nearest_all`)."""
NEAREST_ALL_MAX_BITS = 12
"""The largest C whose 2^C codes ``nearest_all`` decodes every step."""
START_MEANINGS = {
    "scratch": "from its seeds",
    "private": "continued from the private DPLC",
    "cae": "on the CAE's encoder, frozen (the private DPLC)",
}
"""Each start of :data:`STARTS` in words (the README's Gaussian section)."""
STARTS = tuple(START_MEANINGS)
"""Where a DPLC starts training (:attr:`GaussianConfig.starts`): from its seeds, from the
trained private DPLC of its rate, or (the private DPLC only) with the trained CAE's E of its rate,
frozen, and B from its seeds."""
PER_RATE = ("steps", "decoder_hidden", "lr", "cae_lr", "moment_batch", "starts")
"""The settings ``per_rate`` may set for one rate's codecs (G*'s, the source's and the
evaluation's are common to all rates)."""


@dataclass(frozen=True)
class GaussianConfig:
    """The Gaussian experiment: the source, the rate ladder and the small networks' training.

    ``rates`` are numbers of code scalars C; with L = ``levels`` the fixed-length rate is
    C·log₂L bits per d-dimensional vector.
    """

    variances: tuple[float, ...] = (2.0, 1.0, 0.5, 0.25)
    rates: tuple[int, ...] = (0, 1, 2, 4, 8)
    levels: int = 2
    hidden: int = 128
    decoder_hidden: int = 0
    """Hidden width of DPLC's B (code ⊕ noise → latent; 0: ``hidden``): B's capacity apart from
    E's, D's and G*'s."""
    steps: int = 3000
    per_rate: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Settings of the codecs at some code scalars C over the section's, among :data:`PER_RATE`
    (e.g. ``{8: {steps: 10000}}``): a rate's codecs may need a wider B or more steps than the
    others, or only some of the :attr:`starts` (docs/realism.md). :meth:`at_rate` applies them."""
    generator_steps: int = 4000
    batch_size: int = 512
    lr: float = 1e-3
    """Adam's learning rate for G* and the per-rate codecs (the CAE's: ``cae_lr`` when set)."""
    cae_lr: float | None = None
    """Adam's learning rate for the CAE alone (None: ``lr``): the distortion reference, whose
    encoder learns its decoder's nearest codes faster with a larger step."""
    lambda_mmd: float = 100.0
    lambda_rate: float = 100.0
    """DPLC's λ_rate: the start of its dual ascent (``mmd_epsilon`` > 0) or its fixed value."""
    rate_warmup: float = 0.5
    mmd_epsilon: float = 1.0
    """Realism constraint: held-out latent MMD ≤ ``mmd_epsilon`` null s.d. (0: λ_rate fixed)."""
    dual_every: int = 50
    dual_step: float = 0.25
    realism_holdout: int = 2000
    """Source vectors held out to measure the latent MMD on (and to fit the null spread)."""
    realism_draws: int = 4
    """Noise draws per code in the MMD term (over batch/draws codes, so the MMD's cost is that
    of one draw over the batch)."""
    realism_batch: int = 0
    """Source vectors in DPLC's realism term each step (0: the step's own batch). More give the
    MMD's gradient less noise; the distortion term keeps ``batch_size``."""
    realism_independent_pairs: bool = False
    """Leave same-code pairs out of the MMD's x–x term (as :class:`dplc.config.MethodConfig`)."""
    moment_weight: float = 0.0
    """Weight of the second-moment gap (:func:`dplc.realism.moment_gap`) beside the MMD in DPLC's
    λ_rate term (0: the MMD alone). The IMQ MMD barely sees a variance a few percent short at
    these batch sizes; the moment gap does. G*'s WAE penalty stays the MMD alone."""
    moment_batch: int = 0
    """Source vectors of the moment term each step, drawn apart from the batch (0: the realism
    term's own latents). Its cost is linear in them, so it can have the power the quadratic
    statistic needs (its null s.d. falls as 1/n) at no MMD's quadratic cost."""
    moment_decay: float = 0.0
    """0: the moment term is the batch's unbiased gap; in (0, 1): its gradient takes the moments'
    running averages over about 1/(1 − decay) steps (:class:`dplc.realism.RunningMoments`), of
    about (1 + decay)/(1 − decay) times less variance than one batch's."""
    moment_holdout: int = 0
    """Source vectors held out for a second constraint on the moment gap (in its null s.d.,
    ≤ ``mmd_epsilon``; 0: none). The dual then follows the larger of the two violations."""
    realism_grad: str = "decoder"
    """``decoder``: the MMD gradient trains B only (code detached); ``all``: E too."""
    nearest_weight: float = 0.0
    """Weight of E's nearest-neighbour term (:func:`nearest_neighbour_loss`; 0: off): each code
    bit is pulled towards the value whose decode has the smaller error, Lloyd's condition one bit
    at a time, beside the straight-through gradient. Needs ``levels`` = 2."""
    nearest_draws: int = 4
    """Noise draws per candidate code in a private-noise codec's expected error."""
    nearest_all: tuple[str, ...] = ()
    """The codecs (``cae``, ``dplc``) whose nearest-neighbour term compares every one of the
    2^C codes (Lloyd's condition itself; C ≤ :data:`NEAREST_ALL_MAX_BITS`) instead of the code's
    C one-bit flips. Their candidates decode the same for every row (2^C decodes a step); a
    shared codec's decode under each row's own noise (n·2^C decodes a step), so it compares
    flips."""
    shared: str = "dither"
    """How ``dplc_shared`` uses the shared noise, one of :data:`SHARED_FORMS`: ``dither`` or
    ``encoder`` (E sees U), learned (``benchmarks/shared_noise.py`` and
    ``benchmarks/gaussian_nearest.py`` compare them), or ``polar``, explicit."""
    starts: tuple[str, ...] = ("scratch",)
    """Where the DPLCs (private and shared) start, among :data:`STARTS`: ``scratch``, from their
    seeds (the two share them); ``private``, from the trained private DPLC of the same rate (for
    the shared ``encoder`` form with W_U = 0, so it decodes exactly as that codec; for the private
    codec, itself), trained ``continue_steps`` more at the rate's learning rate times
    ``continue_lr_scale``, λ_rate continuing from the private codec's final value with no ramp.
    ``cae``, the private DPLC only: E is the trained CAE's of the same rate, frozen, and B alone
    trains from its seeds for the rate's steps (the CAE's code sits nearer Lloyd's than the one
    DPLC learns at high rates, and with exact realism a code's E Var(X | J) bounds the decoder's
    MSE below, docs/realism.md). With several, each DPLC keeps the start whose codec has the
    least MSE on a validation sample among those that end meeting their held-out realism checks
    (:func:`dplc.gaussian_study.choose`)."""
    continue_steps: int = 2500
    """The steps of a ``private`` start after the private codec."""
    continue_lr_scale: float = 0.1
    """A ``private`` start's learning rate over the rate's."""
    codecs: tuple[str, ...] = CODECS
    """The codecs trained at every rate."""
    test_size: int = 100_000
    seed: int = 0
    threads: int = 2
    workers: int = 1
    """Processes that train the per-rate codecs side by side (each with ``threads // workers``
    torch threads); the results do not depend on it beyond float rounding of the thread count."""

    def __post_init__(self) -> None:
        if not self.variances or any(not (v > 0 and math.isfinite(v)) for v in self.variances):
            raise ValueError(f"variances must be positive and finite, got {self.variances}")
        if any(c < 0 for c in self.rates):
            raise ValueError(f"rates (code scalars) must be >= 0, got {self.rates}")
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2, got {self.levels}")
        if self.hidden < 1 or self.decoder_hidden < 0:
            raise ValueError(f"hidden must be >= 1, decoder_hidden >= 0, got {self.hidden}, {self.decoder_hidden}")
        for c, settings in self.per_rate.items():
            if c not in self.rates or not set(settings) <= set(PER_RATE):
                raise ValueError(f"per_rate maps rates (code scalars) of {self.rates} to settings among "
                                 f"{PER_RATE}, got {c}: {settings}")  # fmt: skip
            self.at_rate(c)  # checks its values
        if self.workers < 1 or self.threads < 1:
            raise ValueError(f"workers and threads must be >= 1, got {self.workers}, {self.threads}")
        if self.shared not in SHARED_FORMS:
            raise ValueError(f"shared must be one of {SHARED_FORMS}, got {self.shared!r}")
        if not self.codecs or any(c not in CODECS for c in self.codecs):
            raise ValueError(f"codecs must be a non-empty subset of {CODECS}, got {self.codecs}")
        if not self.starts or len(set(self.starts)) < len(self.starts) or not set(self.starts) <= set(STARTS):
            raise ValueError(f"starts must be distinct, among {STARTS}, got {self.starts}")
        if "private" in self.starts and ("dplc" not in self.codecs
                                         or ("dplc_shared" in self.codecs and self.shared == "dither")):  # fmt: skip
            raise ValueError("the 'private' start continues the private DPLC (into the shared 'encoder' form): "
                             f"it needs dplc among the codecs and shared: encoder or polar (not trained), "
                             f"got {self.codecs}, {self.shared!r}")
        if ("dplc_shared" in self.codecs and self.shared != "polar"
                and not {"scratch", "private"} & set(self.starts)):  # fmt: skip
            raise ValueError(f"the shared DPLC trains from its seeds or from the private DPLC: starts needs "
                             f"scratch or private beside {self.starts}, or shared: polar")
        if "cae" in self.starts and not {"cae", "dplc"} <= set(self.codecs):
            raise ValueError(f"the 'cae' start gives the private DPLC the CAE's encoder: it needs cae and dplc "
                             f"among the codecs, got {self.codecs}")  # fmt: skip
        if self.continue_steps < 1 or not self.continue_lr_scale > 0:
            raise ValueError(f"continue_steps must be >= 1 and continue_lr_scale > 0, got "
                             f"{self.continue_steps}, {self.continue_lr_scale}")
        if self.realism_grad not in ("decoder", "all"):
            raise ValueError(f"realism_grad must be 'decoder' or 'all', got {self.realism_grad!r}")
        if self.realism_draws < 1 or self.dual_every < 1 or self.realism_holdout < 2:
            raise ValueError("realism_draws and dual_every must be >= 1, realism_holdout >= 2")
        if self.nearest_weight < 0 or self.nearest_draws < 1:
            raise ValueError("nearest_weight must be >= 0 and nearest_draws >= 1")
        if self.nearest_weight > 0 and self.levels != 2:
            raise ValueError(f"the nearest-neighbour term flips bits: levels must be 2, got {self.levels}")
        if not self.lr > 0 or (self.cae_lr is not None and not self.cae_lr > 0):
            raise ValueError(f"lr and cae_lr must be > 0, got {self.lr}, {self.cae_lr}")
        if any(c not in NEAREST_ALL_CODECS for c in self.nearest_all):
            raise ValueError(f"nearest_all must be a subset of {NEAREST_ALL_CODECS}, got {self.nearest_all}")
        if self.nearest_weight > 0 and self.nearest_all and max(self.rates) > NEAREST_ALL_MAX_BITS:
            raise ValueError(f"nearest_all compares 2^C codes: C must be <= {NEAREST_ALL_MAX_BITS}, "
                             f"got rates {self.rates}")  # fmt: skip
        if self.moment_weight < 0 or any(0 < n < 4 for n in (self.moment_holdout, self.moment_batch)):
            raise ValueError("moment_weight must be >= 0, moment_holdout and moment_batch 0 or >= 4")
        if not 0.0 <= self.moment_decay < 1.0:
            raise ValueError(f"moment_decay must be in [0, 1), got {self.moment_decay}")
        if self.moment_weight > 0 and self.realism_draws > 1:  # its halves would share codes
            raise ValueError("the moment gap needs independent rows: realism_draws must be 1")
        if self.realism_batch != 0 and self.realism_batch < 2:
            raise ValueError(f"realism_batch must be 0 (the step's batch) or >= 2, got {self.realism_batch}")

    @property
    def dim(self) -> int:
        return len(self.variances)

    def at_rate(self, c: int) -> GaussianConfig:
        """The settings C's codecs train with: this config with ``per_rate[c]`` in place."""
        settings = dict(self.per_rate.get(c, {}))
        if "starts" in settings:
            settings["starts"] = tuple(settings["starts"])
        return replace(self, **settings, per_rate={}) if self.per_rate else self

    def continuation(self, c: int, lambda_rate: float) -> GaussianConfig:
        """The settings of a DPLC's ``private`` start (:attr:`starts`) at C = ``c`` from a private
        codec that ended at ``lambda_rate``: ``continue_steps`` steps at the rate's learning rate
        times ``continue_lr_scale``, the dual from ``lambda_rate``, no ramp."""
        r = self.at_rate(c)
        return replace(r, steps=self.continue_steps, lr=r.lr * self.continue_lr_scale, rate_warmup=0.0,
                       lambda_rate=lambda_rate)  # fmt: skip

    def bits(self, c: int) -> float:
        """Fixed-length bits per vector at C code scalars."""
        return c * math.log2(self.levels)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GaussianConfig:
        """Strict construction from a params.yaml section (unknown keys are errors)."""
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown gaussian settings: {sorted(unknown)}")
        kw = dict(d)
        for k in ("variances", "rates", "codecs", "nearest_all", "starts"):
            if k in kw:
                kw[k] = tuple(kw[k])
        if "per_rate" in kw:
            kw["per_rate"] = {int(c): dict(v) for c, v in (kw["per_rate"] or {}).items()}
        return cls(**kw)


# --------------------------------------------------------------------------- networks
def mlp(d_in: int, d_out: int, hidden: int) -> nn.Sequential:
    """Two hidden ReLU layers."""
    return nn.Sequential(
        nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, d_out),
    )  # fmt: skip


class Source:
    """N(0, diag σ²) with its own seeded generator."""

    def __init__(self, variances: tuple[float, ...], seed: int) -> None:
        self.std = torch.tensor(variances).sqrt()
        self.gen = torch.Generator().manual_seed(seed)

    def sample(self, n: int) -> Tensor:
        return torch.randn(n, self.std.numel(), generator=self.gen) * self.std


class GaussianCodec(nn.Module):
    """E → quantizer → decoder. ``generator`` set: DPLC (B into frozen G*); else CAE (D).

    At C = 0 the CAE decodes a learned constant (the mean) and DPLC decodes G*(B(U)). With
    ``shared`` (DPLC at C > 0) the decoder's randomness S is also the encoder's:
    ``encoder``, S = U and E(x, U) = E_rest(W₁x + b₁ + W_U·U) with W_U starting at zero;
    ``dither``, S = (U, D) and the code is Q(E(x) + D) − D. The flow is
    ``v = encode(x, S)`` (the transmitted quantized values) then ``decode_latent(v, S)``.
    ``blind`` zeroes S at the encoder (the private codec, exactly; a test of the wiring).
    """

    def __init__(self, cfg: GaussianConfig, c: int, generator: nn.Module | None = None,
                 shared: str | None = None) -> None:  # fmt: skip
        super().__init__()
        d = cfg.dim
        self.c = c
        self.quantizer = Quantizer(cfg.levels)
        self.encoder = mlp(d, c, cfg.hidden) if c > 0 else None
        self.generator = generator
        self.shared = shared if generator is not None and c > 0 else None
        self.blind = False
        if generator is not None:
            for p in generator.parameters():
                p.requires_grad_(False)
            self.noise_dim = d
            self.decoder = mlp(c + d, d, cfg.decoder_hidden or cfg.hidden)  # B: code ⊕ noise → latent
            if self.shared == "encoder":  # zeros, no draw: the other weights are the private codec's
                self.encoder_noise = nn.Parameter(torch.zeros(cfg.hidden, d))
        else:
            self.noise_dim = 0
            self.decoder = mlp(c, d, cfg.hidden) if c > 0 else None
            self.mean = nn.Parameter(torch.zeros(d))

    def draw(self, n: int, gen: torch.Generator | None = None) -> Tensor:
        """The decoder's randomness for ``n`` vectors: U ~ N(0, I_d), plus the dither
        D ~ U[−Δ/2, Δ/2]^C after it in the ``dither`` form."""
        u = torch.randn(n, self.noise_dim, generator=gen)
        if self.shared != "dither":
            return u
        return torch.cat([u, (torch.rand(n, self.c, generator=gen) - 0.5) * self.quantizer.step], dim=1)

    def pre_quantized(self, x: Tensor, s: Tensor | None = None) -> Tensor:
        """E's values before the quantizer (the dither added in the ``dither`` form); C > 0."""
        if self.encoder is None:
            raise ValueError("a rate-0 codec has no encoder")
        if self.shared is None or s is None:
            return self.encoder(x)
        s = torch.zeros_like(s) if self.blind else s
        if self.shared == "encoder":
            return self.encoder[1:](self.encoder[0](x) + s @ self.encoder_noise.T)
        return self.encoder(x) + s[:, self.noise_dim :]

    def encode(self, x: Tensor, s: Tensor | None = None) -> Tensor:
        """Quantized values (n, C) sent to the decoder: hard forward, soft-assignment gradient
        backward; they depend on ``s`` only in a shared form."""
        if self.encoder is None:
            return x.new_zeros(x.shape[0], 0)
        return self.quantizer(self.pre_quantized(x, s))

    def decode(self, v: Tensor, s: Tensor | None = None) -> Tensor:
        """x̂ from the quantized values: D(v) for the CAE (its learned mean at C = 0),
        G*(B(v, s)) for DPLC."""
        if self.generator is None:
            return self.decoder(v) if self.decoder is not None else self.mean.expand(v.shape[0], -1)
        return self.generator(self.decode_latent(v, s))

    def decode_latent(self, v: Tensor, s: Tensor) -> Tensor:
        """B's latent from the quantized values and the decoder's randomness (DPLC only)."""
        if self.shared == "dither":
            v = v - s[:, self.noise_dim :]
        return self.decoder(torch.cat([v, s[:, : self.noise_dim]], dim=1))

    def forward(self, x: Tensor, gen: torch.Generator | None = None,
                decoder_gen: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:  # fmt: skip
        """(x̂, latent or None). ``decoder_gen`` draws the decoder's randomness apart from the
        encoder's (a wrong seed for a shared codec)."""
        if self.generator is None:
            return self.decode(self.encode(x)), None
        s = self.draw(x.shape[0], gen)
        v = self.encode(x, s)
        z = self.decode_latent(v, s if decoder_gen is None else self.draw(x.shape[0], decoder_gen))
        return self.generator(z), z


# --------------------------------------------------------------------------- training
def _adam(params: list[nn.Parameter], lr: float, steps: int) -> tuple[torch.optim.Adam, Any]:
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.6 * steps), int(0.85 * steps)], 0.1)
    return opt, sched


def _check(loss: Tensor, what: str, step: int) -> None:
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{what}: non-finite loss at step {step}")


def train_generator(cfg: GaussianConfig, source: Source) -> nn.Module:
    """G*: a WAE on the source, MSE + λ_mmd·MMD(E(X), N(0, I)) (Tolstikhin et al. 2018, Alg. 2)."""
    return train_autoencoder(cfg, source)[1]


def train_autoencoder(cfg: GaussianConfig, source: Source) -> tuple[nn.Module, nn.Module]:
    """(E, G*) of the WAE :func:`train_generator` trains, both in eval mode."""
    d = cfg.dim
    enc, gen = mlp(d, d, cfg.hidden), mlp(d, d, cfg.hidden)
    opt, sched = _adam([*enc.parameters(), *gen.parameters()], cfg.lr, cfg.generator_steps)
    prior = torch.Generator().manual_seed(cfg.seed + 1)
    for step in range(cfg.generator_steps):
        x = source.sample(cfg.batch_size)
        z = enc(x)
        loss = (gen(z) - x).pow(2).mean() + cfg.lambda_mmd * mmd_imq(
            z, torch.randn(x.shape[0], d, generator=prior)
        )
        _check(loss, "generator", step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return enc.eval(), gen.eval()


def _realism_latents(codec: GaussianCodec, v: Tensor, s: Tensor, cfg: GaussianConfig,
                     gen: torch.Generator) -> Tensor:  # fmt: skip
    """Latents of the realism term: ``realism_draws`` fresh noise draws for each of the first
    batch/draws codes (as many latents as the batch, so the MMD costs the same), the code
    detached when ``realism_grad == 'decoder'`` (the MMD gradient then trains B alone). A shared
    codec's code depends on its noise (unless ``blind``), so its term is the step's own latents
    B(v, S)."""
    v = v.detach() if cfg.realism_grad == "decoder" else v
    if codec.shared is not None and not codec.blind:
        return codec.decode_latent(v, s)
    v = v[: max(2, v.shape[0] // cfg.realism_draws)].repeat(cfg.realism_draws, 1)
    return codec.decode_latent(v, codec.draw(v.shape[0], gen))


def _moment_latents(codec: GaussianCodec, source: Source, cfg: GaussianConfig, gen: torch.Generator) -> Tensor:
    """B's latents of ``moment_batch`` fresh source vectors under fresh noise, for the moment
    term (the code detached as in :func:`_realism_latents`)."""
    x = source.sample(cfg.moment_batch)
    s = codec.draw(x.shape[0], gen)
    v = codec.encode(x, s)
    return codec.decode_latent(v.detach() if cfg.realism_grad == "decoder" else v, s)


def nearest_neighbour_loss(codec: GaussianCodec, x: Tensor, pre: Tensor, s: Tensor | None, draws: int,
                           gen: torch.Generator, search: str = "flips") -> Tensor:  # fmt: skip
    """Lloyd's nearest-neighbour condition (Lloyd 1982) as a loss on E, one bit at a time
    (``search="flips"``) or over every code (``"all"``, :func:`_nearest_codes`; flips for a
    shared codec).

    Beside the code v = Q(pre) each of its C one-bit flips is decoded; where a flip lowers the
    error, that bit's target is the flipped value. Returns the binary cross-entropy of the
    pre-quantized values (logit 4·pre: the boundary between the centres ±0.5 is 0) against
    those targets; nothing reaches the decoder. The error is |x − D(v)|² for the CAE,
    |x − G*(B(v, s))|² with the step's own s for a shared codec (its encoder knows s), and the
    mean over ``draws`` fresh draws of U for private noise (the expected error).
    """
    n, c = pre.shape
    if search == "all" and codec.shared is None:
        target = (_nearest_codes(codec, x, c, draws, gen) > 0).to(pre.dtype)
        return nn.functional.binary_cross_entropy_with_logits(4.0 * pre, target)
    with torch.no_grad():
        v = codec.quantizer.hard(pre)
        cand = v.unsqueeze(1).repeat(1, c + 1, 1)
        idx = torch.arange(c)
        cand[:, idx + 1, idx] = -cand[:, idx + 1, idx]
        cand = cand.reshape(n * (c + 1), c)
        target_x = x.repeat_interleave(c + 1, dim=0)
        if codec.generator is None or codec.shared is not None:
            s_c = None if s is None else s.repeat_interleave(c + 1, dim=0)
            err = (codec.decode(cand, s_c) - target_x).pow(2).sum(-1).view(n, c + 1)
        else:
            cand = cand.repeat(draws, 1)
            out = codec.decode(cand, codec.draw(cand.shape[0], gen))
            err = (out - target_x.repeat(draws, 1)).pow(2).sum(-1).view(draws, n, c + 1).mean(0)
        target = ((v > 0) ^ (err[:, 1:] < err[:, :1])).to(pre.dtype)
    return nn.functional.binary_cross_entropy_with_logits(4.0 * pre, target)


def all_codes(c: int, levels: int) -> Tensor:
    """Every code of C scalars at the quantizer's centres, (levels^C, C), the last scalar
    varying fastest (``itertools.product``'s order)."""
    grid = centers(levels)
    if c < 2:  # cartesian_prod of one tensor is that tensor, of none an error
        return grid.view(-1, 1) if c == 1 else grid.new_zeros(1, 0)
    return torch.cartesian_prod(*[grid] * c)


@torch.no_grad()
def _nearest_codes(codec: GaussianCodec, x: Tensor, c: int, draws: int, gen: torch.Generator) -> Tensor:
    """For each row of ``x`` the code (n, C) of least error among all 2^C (:func:`all_codes`):
    the nearest codeword D(v) for the CAE; for private noise the least expected error
    |x − m_v|² + tr Cov_v, with G*(B(v, U))'s mean m_v and spread over ``draws`` draws per code
    (shared by the batch). Not for a shared codec (:attr:`GaussianConfig.nearest_all`)."""
    if codec.shared is not None:
        raise ValueError("a shared codec's nearest-neighbour term compares one-bit flips")
    codes = all_codes(c, codec.quantizer.levels).to(x.dtype)
    k = codes.shape[0]
    if codec.generator is None:
        err = torch.cdist(x, codec.decode(codes)).pow(2)
    else:
        out = codec.decode(codes.repeat(draws, 1), codec.draw(k * draws, gen)).view(draws, k, -1)
        mean, spread = out.mean(0), out.var(0, unbiased=False).sum(-1)  # their sum: the mean error
        err = torch.cdist(x, mean).pow(2) + spread
    return codes[err.argmin(1)]


@torch.no_grad()
def holdout_latents(codec: GaussianCodec, holdout: Tensor, seed: int) -> Tensor:
    """B's latents of the held-out source vectors under seeded decoder noise."""
    s = codec.draw(holdout.shape[0], torch.Generator().manual_seed(seed))
    return codec.decode_latent(codec.encode(holdout, s), s)


def holdout_mmd_sd(codec: GaussianCodec, holdout: Tensor, null: NullSpread, seed: int) -> float:
    """B's latents on the held-out source vectors against N(0, I), in null s.d."""
    return latent_mmd_sd(holdout_latents(codec, holdout, seed), null, seed=seed + 1)


def load_start(codec: GaussianCodec, start: GaussianCodec) -> None:
    """Load ``start``'s weights into ``codec``: the same codec, or the private DPLC into the shared
    ``encoder`` form (whose W_U, absent from the private codec, keeps its zeros). Raises
    ValueError when they do not nest."""
    ours, theirs = codec.state_dict(), start.state_dict()
    missing, unexpected = set(ours) - set(theirs), set(theirs) - set(ours)
    shapes = [k for k in set(ours) & set(theirs) if ours[k].shape != theirs[k].shape]
    if unexpected or shapes or not missing <= {"encoder_noise"}:
        raise ValueError(f"the start codec does not nest: missing {sorted(missing)}, unexpected "
                         f"{sorted(unexpected)}, other shapes {sorted(shapes)}")  # fmt: skip
    codec.load_state_dict(theirs, strict=False)


def freeze_encoder(codec: GaussianCodec, encoder: nn.Module) -> None:
    """Make ``codec``'s E a frozen copy of ``encoder`` (the CAE's E at the same rate). Raises
    ValueError for a shared codec (its E must see the noise) or an encoder of another shape."""
    if codec.encoder is None or codec.generator is None or codec.shared is not None:
        raise ValueError("a frozen encoder is for a private DPLC at C > 0")
    try:
        codec.encoder.load_state_dict(encoder.state_dict())
    except RuntimeError as e:
        raise ValueError(f"the frozen encoder does not fit this codec's E: {e}") from None
    for p in codec.encoder.parameters():
        p.requires_grad_(False)


def train_codec(
    cfg: GaussianConfig, c: int, source: Source, generator: nn.Module | None = None,
    shared: str | None = None, blind: bool = False, start: GaussianCodec | None = None,
    encoder: nn.Module | None = None,
) -> tuple[GaussianCodec, dict[str, float | None]]:
    """One per-rate codec: CAE (``generator`` None) or DPLC into the frozen ``generator``, its
    decoder noise private or ``shared`` with the encoder (``blind``: zeroed at the encoder),
    its weights drawn or, with ``start``, taken from that codec (a private DPLC nests in the
    ``encoder`` form: its W_U stays zero). With ``encoder`` (a private DPLC only: the CAE's E of
    the same rate) E is that network, frozen, and B alone trains: the code is the CAE's, and
    posterior sampling of it would cost exactly 2·E Var(X | J) (:func:`dplc.gaussian_bounds.code_mmse`).

    DPLC minimises MSE subject to "held-out latent MMD ≤ ε null s.d." (:mod:`dplc.realism`),
    and with ``moment_holdout`` also "held-out moment gap ≤ ε null s.d.": λ_rate ramps in over
    ``rate_warmup`` of the steps, then follows dual ascent on the larger violation every
    ``dual_every`` steps. Returns the codec and {λ_rate, last held-out MMD and moment gap in
    null s.d.}.
    """
    cfg = cfg.at_rate(c)
    codec = GaussianCodec(cfg, c, generator, shared)
    if start is not None:
        load_start(codec, start)
    if encoder is not None:
        freeze_encoder(codec, encoder)
    codec.blind = blind
    kind = "cae" if generator is None else "dplc" if codec.shared is None else "dplc_shared"
    params = [p for p in codec.parameters() if p.requires_grad]
    lr = cfg.cae_lr if generator is None and cfg.cae_lr is not None else cfg.lr
    opt, sched = _adam(params, lr, cfg.steps)
    prior = torch.Generator().manual_seed(cfg.seed + 2 + c)
    dplc = generator is not None
    dual = DualLambda(cfg.lambda_rate, cfg.mmd_epsilon, cfg.dual_step)
    measured: float | None = None
    moment_measured: float | None = None
    null = holdout = moment_holdout = m_null = None
    if dplc and cfg.mmd_epsilon > 0:  # at C = 0 too: B(U) alone must be N(0, I)
        holdout = source.sample(cfg.realism_holdout)
        null = mmd_null(cfg.realism_holdout, cfg.dim, seed=cfg.seed)
        if cfg.moment_holdout:
            moment_holdout = source.sample(cfg.moment_holdout)
            m_null = moment_null(cfg.moment_holdout, cfg.dim, seed=cfg.seed)
    warmup = cfg.rate_warmup * cfg.steps
    realism_source = Source(cfg.variances, cfg.seed + 5_000 + c) if cfg.realism_batch else None
    moment_source = Source(cfg.variances, cfg.seed + 6_000 + c) if cfg.moment_weight and cfg.moment_batch else None
    running = RunningMoments(cfg.dim, cfg.moment_decay) if cfg.moment_decay > 0 else None
    for step in range(cfg.steps):
        x = source.sample(cfg.batch_size)
        s = codec.draw(x.shape[0], prior) if dplc else None  # fresh every step; shared: E sees it
        pre = codec.pre_quantized(x, s) if c > 0 else None
        v = codec.quantizer(pre) if pre is not None else x.new_zeros(x.shape[0], 0)
        loss = (codec.decode(v, s) - x).pow(2).mean()
        if pre is not None and cfg.nearest_weight > 0 and pre.requires_grad:  # not for a frozen E
            loss = loss + cfg.nearest_weight * nearest_neighbour_loss(codec, x, pre, s, cfg.nearest_draws, prior,
                                                                 "all" if kind in cfg.nearest_all else "flips")
        if dplc:
            if realism_source is not None:  # the term on vectors of its own, more than the batch
                x_r = realism_source.sample(cfg.realism_batch)
                s_r = codec.draw(x_r.shape[0], prior)
                z = _realism_latents(codec, codec.encode(x_r, s_r), s_r, cfg, prior)
            else:
                z = _realism_latents(codec, v, s, cfg, prior)
            ramp = min(1.0, step / max(1.0, warmup))
            z_prior = torch.randn(z.shape, generator=prior)
            groups = cfg.realism_draws if cfg.realism_independent_pairs else 1
            realism = mmd_imq(z, z_prior, groups=groups)
            if cfg.moment_weight > 0:
                z_m = z if moment_source is None else _moment_latents(codec, moment_source, cfg, prior)
                gap = moment_gap(z_m) if running is None else running.surrogate(z_m)
                realism = realism + cfg.moment_weight * gap
            loss = loss + ramp * dual.lam * realism
        _check(loss, f"{'dplc' if dplc else 'cae'} C={c}", step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if null is not None and step >= warmup and (step + 1) % cfg.dual_every == 0:
            measured = holdout_mmd_sd(codec.eval(), holdout, null, seed=step)
            violation = measured
            if m_null is not None:
                moment_measured = latent_moment_sd(holdout_latents(codec, moment_holdout, step), m_null)
                violation = max(measured, moment_measured)
            codec.train()
            dual.update(violation)
    info = {"lambda_rate": dual.lam if dplc else None, "holdout_mmd_sd": measured,
            "holdout_moment_sd": moment_measured}  # fmt: skip
    return codec.eval(), info


def variance_errors(x_hat: Tensor, variances: tuple[float, ...]) -> list[float]:
    """Each component's relative variance error Var(x̂ᵢ)/σᵢ² − 1 over the samples ``x_hat``."""
    return [float(v / s - 1.0) for v, s in zip(x_hat.var(0), variances, strict=True)]


@torch.no_grad()
def evaluate(codec: GaussianCodec, x: Tensor, variances: tuple[float, ...], seed: int,
             reference: Tensor | None = None, floor: bool = False) -> dict[str, Any]:  # fmt: skip
    """Per-dimension MSE on ``x``, W₂²(decodes, source) / mean σ², each decoded component's
    relative variance error, and per-component quantile W₂² of the decodes against
    ``reference`` (a second source sample of the same size) beside the same statistic of ``x``
    against ``reference`` (the spread of two exact samples); for a private code, its E Var(X | J)
    on ``x`` (:func:`dplc.gaussian_bounds.code_mmse`) and, with ``floor``, the least MSE any
    decoder of that code reaches at perfect realism (:func:`dplc.gaussian_bounds.transport_floor`)."""
    x_hat, _ = codec(x, torch.Generator().manual_seed(seed))
    mean_var = sum(variances) / len(variances)
    var = x_hat.var(0)
    out = {
        "mse": float((x_hat - x).pow(2).mean()),
        "w2_over_sigma2": gaussian_w2_squared(x_hat, variances) / len(variances) / mean_var,
        "decode_variance": [float(v) for v in var],
        "variance_error": variance_errors(x_hat, variances),
    }
    if reference is not None:
        out["quantile_w2"] = quantile_w2_squared(x_hat, reference)
        out["quantile_w2_null"] = quantile_w2_squared(x, reference)
    if codec.shared is None:  # a private code: its posterior-sampling limit, 2·E Var(X | J)
        codes = codec.encode(x)
        out["code_mmse"] = code_mmse(x, codes)
        if floor:
            out["transport_floor"] = transport_floor(x, codes)
    if codec.shared is not None:  # decoded with another seed's noise than the encoder used
        wrong, _ = codec(x, torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed + 1))
        out["mse_wrong_noise"] = float((wrong - x).pow(2).mean())
        out["variance_error_wrong_noise"] = variance_errors(wrong, variances)
    return out
