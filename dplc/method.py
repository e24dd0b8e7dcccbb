"""The training method's interface: one optimisation step over its modules (Tschannen et al.
2018's objectives are its subclasses, :mod:`dplc.generative` and :mod:`dplc.rate_methods`;
:mod:`dplc.methods` selects one by name).
"""


from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn

from dplc import losses
from dplc.config import MethodConfig, NetConfig

Batch = Callable[[int], Tensor]
"""``batch(n)`` returns ``n`` fresh training images in [-1, 1]."""

GradSync = Callable[[nn.Module], None]
"""Called on a module after ``backward`` and before its optimiser step (data-parallel hook)."""

PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` is bf16 autocast on a CUDA device with bf16 support (tensor cores; no loss
    scaling needed) and fp32 elsewhere (on CPUs without AVX-512-BF16/AMX, bf16 is several times
    slower than fp32); ``fp32`` and ``bf16`` are taken as they are."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        return precision
    cuda = device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return "bf16" if cuda else "fp32"


def multistep_schedule(opt: torch.optim.Optimizer, cfg: MethodConfig, total_steps: int):
    """lr × ``lr_decay`` at the fractions ``lr_decay_at`` of training (Tschannen et al. 2018 schedules)."""
    milestones = sorted({max(1, int(f * total_steps)) for f in cfg.lr_decay_at})
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=cfg.lr_decay)


def as_float(t: Tensor) -> float:
    """A loss tensor as a Python float (detached)."""
    return float(t.detach())


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Method:
    """Base class: modules, optimisers, schedulers, device, autocast and gradient sync.

    A method starts on the CPU; :meth:`to` moves it (a GPU worker of Ray Train). Its random
    draws come from torch's CPU generator and are moved to the device (:meth:`randn`,
    :meth:`rand`), so a run on a GPU draws the same noise as one on the CPU.
    """

    name = "base"

    def __init__(
        self,
        net: NetConfig,
        cfg: MethodConfig,
        total_steps: int,
        precision: str = "fp32",
        grad_sync: GradSync | None = None,
    ) -> None:
        self.net = net
        self.cfg = cfg
        self.total_steps = max(1, total_steps)
        self.requested_precision = precision
        self.device = torch.device("cpu")
        self.precision = resolve_precision(precision, self.device)
        self.grad_sync = grad_sync
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}

    # ----------------------------------------------------------------- helpers
    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on the method's device when ``precision == 'bf16'``, else a no-op."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def to(self, device: torch.device | str) -> Method:
        """Move every module (and the optimiser state, lazily) to ``device``; ``auto``
        precision is resolved for it."""
        self.device = torch.device(device)
        for m in self.modules.values():
            m.to(self.device)
        self.precision = resolve_precision(self.requested_precision, self.device)
        return self

    def randn(self, *shape: int) -> Tensor:
        """N(0, I) of ``shape`` from the CPU generator, on the method's device."""
        return torch.randn(*shape).to(self.device)

    def rand(self, *shape: int) -> Tensor:
        """U[0, 1) of ``shape`` from the CPU generator, on the method's device."""
        return torch.rand(*shape).to(self.device)

    def _adam(self, key: str, params: Iterator[nn.Parameter], lr: float, betas) -> None:
        self.optimizers[key] = torch.optim.Adam(params, lr=lr, betas=betas)

    def _update(self, key: str, loss: Tensor, *modules: nn.Module) -> None:
        """zero_grad, backward, gradient sync, optimiser step."""
        opt = self.optimizers[key]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:
            for m in modules:
                self.grad_sync(m)
        opt.step()

    def _critic_step(self, critic: nn.Module, real: Tensor, fake: Tensor) -> tuple[float, float]:
        """One WGAN-GP critic update; returns (Wasserstein estimate, penalty)."""
        with self.autocast():
            loss_w = losses.critic_loss(critic(real), critic(fake))
            gp = losses.gradient_penalty(critic, real, fake)
        self._update("critic", loss_w + self.cfg.gp_weight * gp, critic)
        return -as_float(loss_w), as_float(gp)

    def _train_critic(self, critic: nn.Module, batch: Batch, make_fake: Callable[[Tensor], Tensor]) -> tuple[float, float]:
        """``n_critic`` WGAN-GP critic updates, each on a fresh real batch and the fakes
        ``make_fake(real)`` (no gradient to the generator); the critic is frozen afterwards."""
        set_requires_grad(critic, True)
        for _ in range(self.cfg.n_critic):
            real = batch(self.cfg.critic_batch_size)
            with torch.no_grad(), self.autocast():
                fake = make_fake(real)
            w, gp = self._critic_step(critic, real, fake.float())
        set_requires_grad(critic, False)
        return w, gp

    def _init_ema(self, generator: nn.Module) -> None:
        """Keep ``generator_ema``, a weight average of ``generator``, when ``cfg.ema_decay`` > 0."""
        if self.cfg.ema_decay <= 0:
            return
        ema = copy.deepcopy(generator).eval()
        set_requires_grad(ema, False)
        self.modules["generator_ema"] = ema
        self._ema_updates = 0

    @torch.no_grad()
    def _update_ema(self, generator: nn.Module) -> None:
        """θ_ema ← d·θ_ema + (1 − d)·θ with d = min(decay, (1 + t)/(10 + t)) (a warm-up so the
        average forgets the random initialisation); BatchNorm statistics are copied."""
        ema = self.modules.get("generator_ema")
        if ema is None:
            return
        self._ema_updates += 1
        t = self._ema_updates
        d = min(self.cfg.ema_decay, (1 + t) / (10 + t))
        for pe, p in zip(ema.parameters(), generator.parameters(), strict=True):
            pe.lerp_(p.detach(), 1.0 - d)
        for be, b in zip(ema.buffers(), generator.buffers(), strict=True):
            be.copy_(b)

    def step(self, batch: Batch) -> dict[str, float]:
        """One optimisation step; returns the losses as floats."""
        raise NotImplementedError

    def end_step(self) -> None:
        """Advance the learning-rate schedules (called by the loop after every step)."""
        for s in self.schedulers.values():
            s.step()

    def train(self, mode: bool = True) -> None:
        for k, m in self.modules.items():
            m.train(mode and k != "generator_ema")

    def to_memory_format(self, memory_format: torch.memory_format) -> None:
        """Lay out every module's 4-D weights as ``memory_format`` (the optimiser state follows
        lazily; values are unchanged, only the strides)."""
        for m in self.modules.values():
            m.to(memory_format=memory_format)

    # --------------------------------------------------------------- persistence
    def state_dict(self) -> dict:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "ema_updates": getattr(self, "_ema_updates", 0),
        }

    def load_state_dict(self, state: dict) -> None:
        for k, m in self.modules.items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
        if "generator_ema" in self.modules:
            self._ema_updates = int(state.get("ema_updates", 0))

    def trainable_parameters(self) -> int:
        return sum(
            p.numel() for m in self.modules.values() for p in m.parameters() if p.requires_grad
        )
