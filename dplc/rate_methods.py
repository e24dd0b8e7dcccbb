"""The per-rate objectives that train a codec (Tschannen et al. 2018): DPLC into a frozen G*, and
the GC and CAE baselines (see :mod:`dplc.methods` for the table of objectives).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from dplc import losses, realism
from dplc.codec import SHARED_MODES, Codec, ConstantImage, build_codec
from dplc.config import MethodConfig, NetConfig
from dplc.data import to_float
from dplc.method import Batch, Method, as_float, multistep_schedule, set_requires_grad
from dplc.nets import Critic
from dplc.precise_bn import recalibrate


class _RateMethod(Method):
    """Common part of the per-rate methods: they train a :class:`Codec`."""

    codec: Codec

    def _decode_train(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(latent, x̂) for a batch, with fresh decoder noise."""
        noise = self.codec.draw_noise(x.shape[0], device=x.device)
        latent = self.codec.latent(self.codec.code(x), noise)
        return latent, self.codec.generator(latent)


CALIBRATION_SEEDS = 1 << 31
"""Offset of the seeds of the held-out check's calibration draws (:meth:`DPLC.holdout_mmd_sd`)
from the seed of its held-out noise: one generator for both would draw the first calibration
batch's noise from the stream the held-out noise starts, and standardise the held-out latents
in part with their own moments. (Torch's CPU generator keeps a seed's low 32 bits, so the
offset stays below 2³².)"""


class DPLC(_RateMethod):
    """DPLC: E and B trained into a frozen G* (Tschannen et al. 2018, §3–4), realism enforced as
    a constraint: minimise √MSE subject to the held-out latent MMD ≤ ε null standard deviations,
    with λ_rate the Lagrange multiplier updated by dual ascent (:mod:`dplc.realism`).

    ``holdout`` (uint8 or float images kept out of training) is where the latent MMD is measured
    every ``cfg.dual_every`` steps, with BatchNorm statistics re-estimated on seeded batches of
    ``calibration`` (the training images; :meth:`holdout_mmd_sd`); without ``holdout``, or with
    ``cfg.mmd_epsilon`` = 0, λ_rate stays at ``cfg.lambda_rate``. With ``cfg.realism_grad ==
    'decoder'`` the MMD term's gradient reaches B only (the code is detached in that path), so E
    is trained for distortion alone. With ``cfg.free_fraction`` the first steps minimise √MSE
    alone and the constrained ones start from there with a fresh Adam and schedule
    (:meth:`_start_phase`), as a second run would. With ``cfg.settle_fraction`` the last steps
    start once more, at the learning rate the constrained phase's decays left and with λ_rate
    back at its start (:meth:`_start_settling`).
    """

    name = "dplc"

    @property
    def codec_mode(self) -> str:
        """The codec's mode at C > 0 (:class:`DPLCShared`: per ``cfg.shared_form``)."""
        return "map"

    def __init__(
        self,
        net: NetConfig,
        cfg: MethodConfig,
        total_steps: int,
        generator: nn.Module,
        holdout: Tensor | None = None,
        calibration: Tensor | None = None,
        **kw,
    ) -> None:
        super().__init__(net, cfg, total_steps, **kw)
        mode = "prior" if net.code_channels == 0 else self.codec_mode
        self.codec = build_codec(net, mode, meta={"method": self.name})
        self.codec.generator.load_state_dict(generator.state_dict())
        self.codec.generator.eval()
        set_requires_grad(self.codec.generator, False)
        self.modules = {"codec": self.codec}
        phased = mode != "prior"
        self.free_steps = round(cfg.free_fraction * total_steps) if phased else 0
        self.settle_steps = round(cfg.settle_fraction * total_steps) if phased else 0
        self.constrained_steps = total_steps - self.free_steps - self.settle_steps
        if any(p.requires_grad for p in self.codec.parameters()):
            self._start_phase(self.free_steps or self.constrained_steps)
        self.dual = realism.DualLambda(cfg.lambda_rate, cfg.mmd_epsilon, cfg.dual_step)
        self.holdout: Tensor | None = None
        self.null: realism.NullSpread | None = None
        self.steps_done = 0
        if holdout is not None and cfg.mmd_epsilon > 0 and mode != "prior":
            self.holdout = holdout if holdout.is_floating_point() else to_float(holdout)
            self.null = realism.mmd_null(self.holdout.shape[0], net.latent_dim, seed=0)
            if cfg.check_bn_batches and calibration is None:
                raise ValueError(
                    "dplc's held-out check re-estimates BatchNorm statistics on training images "
                    "(cfg.check_bn_batches > 0): pass them as calibration"
                )
        self.calibration = calibration

    def _start_phase(self, steps: int, lr: float | None = None) -> None:
        """A fresh Adam on E's and B's parameters at ``lr`` (default ``cfg.lr``) with the schedule
        of a ``steps``-step run (the whole run, or with ``cfg.free_fraction`` its free phase, then
        its constrained one; then with ``cfg.settle_fraction`` the settling phase)."""
        trainable = [p for p in self.codec.parameters() if p.requires_grad]
        self._adam("codec", iter(trainable), self.cfg.lr if lr is None else lr, self.cfg.betas)
        self.schedulers["codec"] = multistep_schedule(self.optimizers["codec"], self.cfg, steps)

    def _start_settling(self) -> None:
        """The settling phase (``cfg.settle_fraction``): a fresh Adam at the learning rate where
        the constrained phase's schedule ended, a schedule of its own, and the dual restarted at
        ``cfg.lambda_rate``, so λ_rate no longer carries the overshoot it reached while the
        learning rate was high (docs/realism.md, "Trained on at the final learning rate, the
        dual restarted")."""
        lr = self.optimizers["codec"].param_groups[0]["lr"]
        self._start_phase(self.settle_steps, lr=lr)
        self.dual = realism.DualLambda(self.cfg.lambda_rate, self.cfg.mmd_epsilon, self.cfg.dual_step)

    def train(self, mode: bool = True) -> None:
        super().train(mode)
        self.codec.generator.eval()  # G* is frozen: BatchNorm uses its running statistics

    def to(self, device: torch.device | str) -> DPLC:
        super().to(device)
        if self.holdout is not None:
            self.holdout = self.holdout.to(self.device)
        return self

    @torch.no_grad()
    def holdout_mmd_sd(self, seed: int = 0) -> float:
        """The held-out latent MMD of B(Q(E(x)), u) against N(0, I), in null s.d.

        Read on a copy of E and B in eval mode, as the finished codec decodes, after re-estimating
        the copy's BatchNorm statistics over ``cfg.check_bn_batches`` batches of training images
        under the current weights (precise BN, :func:`dplc.precise_bn.recalibrate`; images and
        noise drawn from a generator seeded with :data:`CALIBRATION_SEEDS` + ``seed``, so every
        rank reads the same and no draw shares the held-out noise's stream). The
        held-out latents are thus normalised with statistics of other images, as a decoded
        image's are. With ``cfg.check_bn_batches`` = 0 the copy reads in training mode, where
        BatchNorm standardises the held-out set with its own moments: their sampling spread,
        which the null's spread counts, is gone, and the reading is low (docs/realism.md, "The
        held-out check read with its own statistics").
        """
        assert self.holdout is not None and self.null is not None
        codec = copy.deepcopy(self.codec)
        if self.cfg.check_bn_batches:
            self._recalibrate(codec, torch.Generator().manual_seed(CALIBRATION_SEEDS + seed))
        else:
            codec.train()
        x = self.holdout
        noise = codec.draw_noise(x.shape[0], torch.Generator().manual_seed(seed), device=x.device)
        latent = codec.latent(codec.code(x, noise), noise)
        return realism.latent_mmd_sd(latent, self.null, seed=seed + 1)

    def _recalibrate(self, codec: Codec, gen: torch.Generator) -> None:
        """Re-estimate ``codec``'s E and B BatchNorm statistics over ``cfg.check_bn_batches``
        batches of ``self.calibration`` (indices and noise from ``gen``); leaves it in eval mode."""
        assert self.calibration is not None
        images, n = self.calibration, self.cfg.batch_size

        def forward() -> None:
            idx = torch.randint(0, images.shape[0], (n,), generator=gen)
            x = images[idx] if images.is_floating_point() else to_float(images[idx])
            _latent_pass(codec, x.to(self.device), gen)

        recalibrate(codec, forward, self.cfg.check_bn_batches, skip=("generator",))
        codec.eval()

    def _realism_mmd(self, batch: Batch, x: Tensor, code: Tensor, noise: Tensor, latent: Tensor) -> Tensor:
        """MMD(B(·), N(0, I)) over ``cfg.realism_draws`` noise draws per code (the step's own
        latents when 1), the code detached when ``cfg.realism_grad == 'decoder'``; or, with
        ``cfg.realism_images``, over that many fresh images from ``batch``, one draw each. With
        ``cfg.realism_independent_pairs`` pairs of draws of one code are left out of the x–x
        term (``mmd_imq(groups=k)``, the unbiased estimate of the marginal's MMD); by default
        they count, which also pushes B to spread its noise over each code. A shared-noise
        codec's code depends on the noise, so each draw encodes ``x`` again with its own u."""
        k, cut = self.cfg.realism_draws, self.cfg.realism_grad == "decoder"
        if self.cfg.realism_images:
            xs = batch(self.cfg.realism_images)
            draws = self.codec.draw_noise(xs.shape[0], device=x.device)
            with torch.set_grad_enabled(not cut):
                code = self.codec.code(xs, draws)
            latent = self.codec.latent(code, draws)
        elif k > 1 and self.codec.shares_noise:
            xs = x.repeat(k, *([1] * (x.dim() - 1)))
            draws = self.codec.draw_noise(xs.shape[0], device=x.device)
            code = self.codec.code(xs, draws)
            latent = self.codec.latent(code.detach() if cut else code, draws)
        elif k > 1:
            code = code.detach() if cut else code
            code = code.repeat(k, *([1] * (code.dim() - 1)))
            latent = self.codec.latent(code, self.codec.draw_noise(code.shape[0], device=code.device))
        elif cut:
            latent = self.codec.latent(code.detach(), noise)
        groups = k if self.cfg.realism_independent_pairs else 1
        return losses.mmd_imq(latent, self.randn(*latent.shape), self.cfg.mmd_scales, groups=groups)

    def step(self, batch: Batch) -> dict[str, float]:
        x = batch(self.cfg.batch_size)
        self.steps_done += 1
        if self.codec.mode == "prior":
            with torch.no_grad():
                x_hat = self.codec.generator(self.randn(x.shape[0], self.net.latent_dim))
            return {"loss": float(losses.mse(x_hat, x)), "mse": float(losses.mse(x_hat, x))}
        if self.free_steps and self.steps_done == self.free_steps + 1:
            self._start_phase(self.constrained_steps)  # the constrained phase
        if self.settle_steps and self.steps_done == self.free_steps + self.constrained_steps + 1:
            self._start_settling()
        free = self.steps_done <= self.free_steps
        lam = self.dual.lam
        with self.autocast():
            noise = self.codec.draw_noise(x.shape[0], device=x.device)
            code = self.codec.code(x, noise)  # no random draw: the noise comes first for E(x, u)
            latent = self.codec.latent(code, noise)
            rec = losses.sqrt_mse(self.codec.generator(latent), x)
            mmd = None if free else self._realism_mmd(batch, x, code, noise, latent)
            loss = rec if mmd is None else rec + lam * mmd
        self._update("codec", loss, self.codec)
        out = {"loss": as_float(loss), "sqrt_mse": as_float(rec), "mse": as_float(rec) ** 2,
               "lambda_rate": 0.0 if free else lam}  # fmt: skip
        if mmd is not None:
            out["mmd"] = as_float(mmd)
        if self.steps_done == self.total_steps:
            self.recalibrate_batchnorm(batch)
        if not free and self.holdout is not None and self.steps_done % self.cfg.dual_every == 0:
            out["holdout_mmd_sd"] = self.holdout_mmd_sd(seed=self.steps_done)
            out["lambda_rate"] = self.dual.update(out["holdout_mmd_sd"])
        return out

    def recalibrate_batchnorm(self, batch: Batch) -> None:
        """Replace E's and B's BatchNorm running statistics by their plain average over
        ``cfg.bn_batches`` fresh training batches under the final weights, G* left alone
        (precise BN, :func:`dplc.precise_bn.recalibrate`). During training the running averages
        trail weights that move, and the codec decodes with them (docs/realism.md)."""

        recalibrate(self.codec, lambda: _latent_pass(self.codec, batch(self.cfg.batch_size)),
                    self.cfg.bn_batches, skip=("generator",))  # fmt: skip
        self.train()  # back to training mode, G* in eval (as before the call)

    def state_dict(self) -> dict:
        return super().state_dict() | {"dual": self.dual.state_dict(), "steps_done": self.steps_done}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        if "dual" in state:
            self.dual.load_state_dict(state["dual"])
            self.steps_done = int(state["steps_done"])


class DPLCShared(DPLC):
    """DPLC with common randomness: E(x, u) reads the decoder's noise u, so it chooses the code
    knowing how B will decode it (``dplc_shared``; Zhang et al., NeurIPS 2021; Theis & Agustsson
    2021). Trained as DPLC, the realism constraint on the marginal of B(E(X, U), U), u fresh every
    step; a file's seed and an image's index give encoder and decoder the same u
    (:mod:`dplc.noise`). At C = 0 it is DPLC's prior sampler.

    ``cfg.shared_form`` says how the encoder uses u: ``encoder``, E(x, u) learns to read it;
    ``dither``, subtractive dither d drawn with u, code Q(E(x) + d), B reads Q(E(x) + d) − d
    (codec mode ``dither``)."""

    name = "dplc_shared"

    @property
    def codec_mode(self) -> str:
        return SHARED_MODES[self.cfg.shared_form]


class GC(_RateMethod):
    """Generative compression baseline: MSE + λ_gan·GAN with noise fed to B (Agustsson et al. 2018)."""

    name = "gc"

    def __init__(self, net: NetConfig, cfg: MethodConfig, total_steps: int, **kw) -> None:
        super().__init__(net, cfg, total_steps, **kw)
        self.codec = build_codec(net, "map", meta={"method": self.name})
        self.critic = Critic(net)
        self.modules = {"codec": self.codec, "critic": self.critic}
        self._adam("codec", self.codec.parameters(), cfg.lr, cfg.betas)
        self._adam("critic", self.critic.parameters(), cfg.critic_lr, cfg.critic_betas)
        self.schedulers["codec"] = multistep_schedule(self.optimizers["codec"], cfg, total_steps)

    def step(self, batch: Batch) -> dict[str, float]:
        w, gp = self._train_critic(self.critic, batch, lambda real: self._decode_train(real)[1])
        x = batch(self.cfg.batch_size)
        with self.autocast():
            _, x_hat = self._decode_train(x)
            dist = losses.mse(x_hat, x)
            adv = losses.generator_loss(self.critic(x_hat))
            rate0 = self.net.code_channels == 0
            loss = (0.0 if rate0 else dist) + self.cfg.lambda_gan * adv
        self._update("codec", loss, self.codec)
        return {"loss": as_float(loss), "mse": as_float(dist), "adv": as_float(adv), "wasserstein": w, "gp": gp}


class CAE(_RateMethod):
    """Compressive autoencoder: MSE only, deterministic B (the distortion-optimal reference)."""

    name = "cae"

    def __init__(self, net: NetConfig, cfg: MethodConfig, total_steps: int, **kw) -> None:
        if net.noise:
            net = NetConfig(**{**net.__dict__, "noise": False})
        super().__init__(net, cfg, total_steps, **kw)
        mode = "mean" if net.code_channels == 0 else "map"
        self.codec = build_codec(net, mode, meta={"method": self.name})
        self.modules = {"codec": self.codec}
        if mode == "map":
            self._adam("codec", self.codec.parameters(), cfg.lr, cfg.betas)
            self.schedulers["codec"] = multistep_schedule(self.optimizers["codec"], cfg, total_steps)

    def step(self, batch: Batch) -> dict[str, float]:
        x = batch(self.cfg.batch_size)
        if self.codec.mode == "mean":
            gen = self.codec.generator
            assert isinstance(gen, ConstantImage)
            gen.update(x)
            return {"loss": float(losses.mse(gen(x), x)), "mse": float(losses.mse(gen(x), x))}
        with self.autocast():
            _, x_hat = self._decode_train(x)
            loss = losses.mse(x_hat, x)
        self._update("codec", loss, self.codec)
        return {"loss": as_float(loss), "mse": as_float(loss)}


def _latent_pass(codec: Codec, x: Tensor, gen: torch.Generator | None = None) -> None:
    """One forward pass B(Q(E(x, u)), u) with fresh noise u (from ``gen``, or torch's global
    stream when None): what precise BN averages E's and B's statistics over."""
    noise = codec.draw_noise(x.shape[0], gen, device=x.device)
    codec.latent(codec.code(x, noise), noise)
