"""The six training objectives of Tschannen et al. 2018 by name, and what each one is.

This is the one place a method's name is spelled with its kind. Config validation
(:mod:`dplc.config`), the method registry (:mod:`dplc.methods`), the training loop, the
pipeline's params and its stages all derive from :data:`BY_NAME`; the objectives themselves are
described in ``docs/method.md``.

>>> [name for name, spec in BY_NAME.items() if spec.generative]
['wgan_gp', 'wae', 'wpp']
>>> [name for name, spec in BY_NAME.items() if spec.per_rate]
['dplc', 'dplc_shared', 'gc', 'cae']
>>> BY_NAME["gc"].images_per_step(batch_size=256, n_critic=5, critic_batch_size=64)
576
>>> BY_NAME["cae"].images_per_step(batch_size=256, n_critic=5, critic_batch_size=64)
256
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MethodSpec:
    """What the rest of dplc needs to know of one objective."""

    name: str
    generative: bool
    """Trains the unconstrained generator G* (rate 0, no code); else a per-rate codec."""
    critic: bool
    """Trains a WGAN-GP critic on ``n_critic`` extra batches of ``critic_batch_size`` a step."""
    into_generator: bool = False
    """Trains E and B into a frozen G* of a generative method (dplc)."""
    decoder_noise: bool = True
    """Its decoder takes noise (every method but the deterministic cae)."""
    realism_constraint: bool = False
    """Enforces realism as the constraint "held-out latent MMD ≤ ε" (dplc's dual ascent)."""
    shared_noise: bool = False
    """Its encoder reads the decoder's noise (common randomness, ``dplc_shared``)."""
    trains_like: str | None = None
    """The method whose params section (steps, settings, tuned values) it trains with."""
    rate0_steps: int | None = None
    """At C = 0 nothing is learned (dplc decodes G*(z), cae the training mean): the steps that
    record the loss (cae: its running mean over 100 batches); None trains as at any rate."""
    defaults: dict[str, Any] = field(default_factory=dict)
    """The authors' optimiser settings (Tschannen et al. 2018)."""
    description: str = ""
    """One paragraph for a person browsing the model registry (``{generator}``: G*'s method)."""

    @property
    def per_rate(self) -> bool:
        """A per-rate codec (dplc, gc, cae), trained once for every rate of the ladder."""
        return not self.generative

    def images_per_step(self, batch_size: int, n_critic: int, critic_batch_size: int) -> int:
        """Images one training step draws: the batch, plus the critic's batches."""
        return batch_size + (n_critic * critic_batch_size if self.critic else 0)


_ADAM = dict(betas=(0.9, 0.999), lr_decay_at=(0.6, 0.85))

BY_NAME: dict[str, MethodSpec] = {
    s.name: s
    for s in (
        MethodSpec("wgan_gp", generative=True, critic=True,
                   defaults=dict(batch_size=64, lr=1e-4, betas=(0.5, 0.9), lr_decay_at=())),
        MethodSpec("wae", generative=True, critic=False,
                   defaults=dict(batch_size=256, lr=1e-3, betas=(0.9, 0.999), lr_decay_at=(0.55, 0.9))),
        MethodSpec("wpp", generative=True, critic=True, defaults=dict(batch_size=256, lr=3e-4, **_ADAM)),
        MethodSpec(
            "dplc", generative=False, critic=False, into_generator=True, realism_constraint=True,
            rate0_steps=1, defaults=dict(batch_size=256, lr=1e-3, **_ADAM),
            description=(
                "DPLC (Tschannen et al., NeurIPS 2018): a per-rate encoder E and stochastic map B "
                "into the frozen generator G* trained by {generator}; decodes follow the data "
                "distribution at every rate (realism enforced as a constraint on "
                "MMD(B(E(X)), N(0, I)))."
            ),
        ),
        MethodSpec(
            "dplc_shared", generative=False, critic=False, into_generator=True,
            realism_constraint=True, shared_noise=True, rate0_steps=1, trains_like="dplc",
            defaults=dict(batch_size=256, lr=1e-3, **_ADAM),
            description=(
                "DPLC with shared randomness (Zhang et al., NeurIPS 2021): as DPLC into the frozen "
                "G* trained by {generator}, but the encoder also reads the decoder's noise, drawn "
                "from the file's seed and the image's index on both sides; decodes follow the "
                "data distribution across files, and another seed decodes a wrong image."
            ),
        ),
        MethodSpec(
            "gc", generative=False, critic=True,
            defaults=dict(batch_size=256, lr=1e-3, betas=(0.5, 0.9), lr_decay_at=(0.6, 0.85)),
            description=(
                "Generative compression baseline (Agustsson et al. 2018): E, B and G trained "
                "jointly per rate for MSE plus a WGAN-GP term, with noise fed to B."
            ),
        ),
        MethodSpec(
            "cae", generative=False, critic=False, decoder_noise=False, rate0_steps=100,
            defaults=dict(batch_size=256, lr=1e-3, **_ADAM),
            description=(
                "Compressive autoencoder baseline: E and G trained per rate for MSE alone; "
                "deterministic decodes (the distortion-optimal reference)."
            ),
        ),
    )
}  # fmt: skip

METHODS = tuple(BY_NAME)
"""The method names, generative ones first."""
GENERATIVE = tuple(name for name, spec in BY_NAME.items() if spec.generative)
"""Methods that train the unconstrained generator G* (input to ``dplc``)."""
PER_RATE = tuple(name for name, spec in BY_NAME.items() if spec.per_rate)
"""Methods trained once per rate of the ladder."""
