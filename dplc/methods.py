"""The training objectives of Tschannen et al. 2018 (and DPLC with shared noise) as training steps over the shared networks.

Each method owns its modules and optimisers and exposes one :meth:`Method.step`, which draws
the batches it needs from ``batch(n)`` (a callable returning ``n`` images in [-1, 1]) and
returns its losses as floats. Select one by name with :func:`build_method`.

=========  ==================================================================================
method     objective
=========  ==================================================================================
wgan_gp    WGAN-GP on prior samples (Gulrajani et al. 2017): n_critic critic steps on fresh
           batches, then one generator step.
wae        WAE-MMD (Tolstikhin et al. 2018): sqrt-MSE(G(E(x)), x) + λ_mmd·MMD(E(x), z).
wpp        Wasserstein++ (Tschannen et al. 2018, §4): the WAE terms − λ_adv·f(G(z̃)),
           z̃ = α·sg(E(x)) + (1−α)·z, α ~ U[0, 1]; the critic sees real x against G(z̃).
dplc       Per rate, into a frozen G*: sqrt-MSE(G*(B(Q(E(x)), u)), x) + λ_rate·MMD(B(·), z),
           λ_rate the multiplier of the constraint "held-out latent MMD ≤ ε null s.d." (dual
           ascent). At C = 0 the decoder is G*'s prior sampler and nothing is trained.
dplc_      dplc whose encoder reads the decoder's noise, E(x, u) (common randomness: a file's
shared     seed and an image's index give both sides the same u); the constraint holds on the
           marginal of B(E(X, U), U).
gc         Per rate (Agustsson et al. 2018): MSE(G(B(Q(E(x)), u)), x) + λ_gan·(−f(x̂)), a
           WGAN-GP critic on x vs x̂; at C = 0 the distortion term carries no information
           and is dropped (a pure GAN on the noise).
cae        Per rate: MSE only, no noise; at C = 0 the decoder is the running training mean.
=========  ==================================================================================

wpp's generator adversarial term is ``cfg.adv_target``: ``mixture`` trains G on the same mixture z̃
the critic sees (a WGAN on one distribution, so prior samples G(z) get an adversarial signal
too); ``encoded`` is the paper's −f(G(sg E(x))).
"""

from __future__ import annotations

from torch import Tensor, nn

from dplc.config import MethodConfig, NetConfig
from dplc.generative import WAE, WGANGP, WassersteinPP
from dplc.method import GradSync, Method
from dplc.method_specs import BY_NAME, GENERATIVE
from dplc.nets import Generator
from dplc.rate_methods import CAE, DPLC, GC, DPLCShared

METHOD_CLASSES: dict[str, type[Method]] = {
    c.name: c for c in (WGANGP, WAE, WassersteinPP, DPLC, DPLCShared, GC, CAE)
}
"""The class of each method of :data:`dplc.method_specs.BY_NAME` (``tests/test_methods.py``
checks that the two name the same methods)."""


def build_method(
    net: NetConfig,
    cfg: MethodConfig,
    total_steps: int,
    precision: str = "fp32",
    generator: nn.Module | None = None,
    grad_sync: GradSync | None = None,
    holdout: Tensor | None = None,
    calibration: Tensor | None = None,
) -> Method:
    """The method named ``cfg.name``; ``dplc`` needs the frozen ``generator`` G* and measures
    its realism constraint on the ``holdout`` images, with BatchNorm statistics re-estimated on
    batches of the ``calibration`` images (its training images)."""
    cls = METHOD_CLASSES[cfg.name]
    kw = dict(precision=precision, grad_sync=grad_sync)
    if BY_NAME[cfg.name].into_generator:
        if generator is None:
            raise ValueError(
                f"{cfg.name} needs a trained generator G* (from {', '.join(GENERATIVE)})"
            )
        return cls(net, cfg, total_steps, generator=generator, holdout=holdout,  # type: ignore[call-arg]
                   calibration=calibration, **kw)  # fmt: skip
    return cls(net, cfg, total_steps, **kw)


def generator_of(method: Method, average: bool = True) -> Generator:
    """The trained G of a generative method (wgan_gp, wae, wpp): its weight average when the
    method keeps one (``cfg.ema_decay`` > 0) and ``average``, else the live weights."""
    if not BY_NAME[method.name].generative:
        raise ValueError(f"{method.name} does not train an unconstrained generator")
    if average and "generator_ema" in method.modules:
        return method.modules["generator_ema"]  # type: ignore[return-value]
    return method.generator  # type: ignore[attr-defined]
