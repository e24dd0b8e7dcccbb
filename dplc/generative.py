"""The generative objectives that train the unconstrained generator G* (Tschannen et al. 2018):
WGAN-GP, WAE and Wasserstein++ (see :mod:`dplc.methods` for the table of objectives).
"""

from __future__ import annotations

from torch import Tensor

from dplc import losses
from dplc.config import MethodConfig, NetConfig
from dplc.method import Batch, Method, as_float, multistep_schedule
from dplc.nets import Critic, Encoder, Generator


class WGANGP(Method):
    """WGAN-GP on prior samples: G and critic f (Gulrajani et al. 2017, Alg. 1)."""

    name = "wgan_gp"

    def __init__(self, net: NetConfig, cfg: MethodConfig, total_steps: int, **kw) -> None:
        super().__init__(net, cfg, total_steps, **kw)
        self.generator = Generator(net)
        self.critic = Critic(net)
        self.modules = {"generator": self.generator, "critic": self.critic}
        self._init_ema(self.generator)
        self._adam("generator", self.generator.parameters(), cfg.lr, cfg.betas)
        self._adam("critic", self.critic.parameters(), cfg.critic_lr, cfg.critic_betas)
        self.schedulers["generator"] = multistep_schedule(self.optimizers["generator"], cfg, total_steps)

    def step(self, batch: Batch) -> dict[str, float]:
        m = self.net.latent_dim
        w, gp = self._train_critic(self.critic, batch, lambda real: self.generator(self.randn(real.shape[0], m)))
        critic_loss = -w + self.cfg.gp_weight * gp
        with self.autocast():
            loss_g = losses.generator_loss(
                self.critic(self.generator(self.randn(self.cfg.batch_size, m)))
            )
        self._update("generator", loss_g, self.generator)
        self._update_ema(self.generator)
        return {"loss": as_float(loss_g), "critic_loss": critic_loss, "wasserstein": w, "gp": gp}


class WAE(Method):
    """WAE-MMD: deterministic E (BatchNorm on the latent) and G (Tolstikhin et al. 2018)."""

    name = "wae"

    def __init__(self, net: NetConfig, cfg: MethodConfig, total_steps: int, **kw) -> None:
        super().__init__(net, cfg, total_steps, **kw)
        self.encoder = Encoder(net, "latent")
        self.generator = Generator(net)
        self.modules = {"encoder": self.encoder, "generator": self.generator}
        self._init_ema(self.generator)
        params = list(self.encoder.parameters()) + list(self.generator.parameters())
        self._adam("autoencoder", iter(params), cfg.lr, cfg.betas)
        self.schedulers["autoencoder"] = multistep_schedule(
            self.optimizers["autoencoder"], cfg, total_steps
        )

    def _primal(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(z_enc, sqrt-MSE, MMD) of the WAE objective on batch ``x``."""
        z_enc = self.encoder(x)
        rec = losses.sqrt_mse(self.generator(z_enc), x)
        mmd = losses.mmd_imq(z_enc, self.randn(*z_enc.shape), self.cfg.mmd_scales)
        return z_enc, rec, mmd

    def step(self, batch: Batch) -> dict[str, float]:
        x = batch(self.cfg.batch_size)
        with self.autocast():
            _, rec, mmd = self._primal(x)
            loss = rec + self.cfg.lambda_mmd * mmd
        self._update("autoencoder", loss, self.encoder, self.generator)
        self._update_ema(self.generator)
        return {"loss": as_float(loss), "sqrt_mse": as_float(rec), "mmd": as_float(mmd)}


class WassersteinPP(WAE):
    """Wasserstein++: WAE primal terms plus a WGAN-GP dual term on G(z̃) (Tschannen et al. 2018)."""

    name = "wpp"

    def __init__(self, net: NetConfig, cfg: MethodConfig, total_steps: int, **kw) -> None:
        super().__init__(net, cfg, total_steps, **kw)
        self.critic = Critic(net)
        self.modules["critic"] = self.critic
        self._adam("critic", self.critic.parameters(), cfg.critic_lr, cfg.critic_betas)

    def _mixed_latent(self, z_enc: Tensor) -> Tensor:
        """z̃ = α·E(x) + (1−α)·z with α ~ U[0, 1] per sample, E(x) detached."""
        alpha = self.rand(z_enc.shape[0], 1)
        return alpha * z_enc.detach().float() + (1 - alpha) * self.randn(*z_enc.shape)

    def _adversarial_latent(self, z_enc: Tensor) -> Tensor:
        """The latent of the generator's adversarial term: the critic's mixture z̃ (``mixture``)
        or sg(E(x)) itself (``encoded``, the paper's f(G(sg E(x))))."""
        if self.cfg.adv_target == "encoded":
            return z_enc.detach()
        return self._mixed_latent(z_enc)

    def step(self, batch: Batch) -> dict[str, float]:
        cb = self.cfg.critic_batch_size
        w, gp = self._train_critic(self.critic, batch, lambda real: self.generator(self._mixed_latent(self.encoder(real))))
        x = batch(self.cfg.batch_size)
        with self.autocast():
            z_enc, rec, mmd = self._primal(x)
            adv = losses.generator_loss(self.critic(self.generator(self._adversarial_latent(z_enc[:cb]))))
            loss = rec + self.cfg.lambda_mmd * mmd + self.cfg.lambda_adv * adv
        self._update("autoencoder", loss, self.encoder, self.generator)
        self._update_ema(self.generator)
        return {
            "loss": as_float(loss),
            "sqrt_mse": as_float(rec),
            "mmd": as_float(mmd),
            "adv": as_float(adv),
            "wasserstein": w,
            "gp": gp,
        }
