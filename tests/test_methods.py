import ast
import copy
import math
from pathlib import Path

import pytest
import torch
from _tiny import fixed_batch, tiny_method, tiny_net

from dplc.config import ConfigError, MethodConfig
from dplc.method_specs import BY_NAME
from dplc.methods import METHOD_CLASSES, build_method, generator_of
from dplc.nets import Generator
from dplc.rate_methods import DPLC
from dplc.train import images_per_step as images_per_step_of

# (method, code channels, metric that must fall on a fixed batch, learning rate)
CASES = [
    ("wgan_gp", 0, "critic_loss", 1e-4),
    ("wae", 0, "sqrt_mse", 3e-3),
    ("wpp", 0, "sqrt_mse", 3e-3),
    ("dplc", 2, "sqrt_mse", 3e-3),
    ("gc", 2, "mse", 3e-3),
    ("cae", 2, "mse", 3e-3),
]


def _trained_generator(x: torch.Tensor) -> Generator:
    """A G* that has seen the batch (WAE steps), so its BatchNorm statistics are realistic."""
    wae = build_method(tiny_net(), tiny_method("wae", lr=3e-3), 30)
    _run(wae, 30, lambda n: x[:n])
    return generator_of(wae).eval()


def _run(method, steps: int, batch) -> list[dict]:
    out = []
    for _ in range(steps):
        out.append(method.step(batch))
        method.end_step()
    return out


@pytest.mark.parametrize("name,c,metric,lr", CASES)
def test_loss_falls_on_fixed_tiny_batch(name, c, metric, lr):
    x = fixed_batch(16)
    batch = lambda n: x[:n]  # noqa: E731
    gen = _trained_generator(x) if name == "dplc" else None
    extra = {"lambda_rate": 1.0} if name == "dplc" else {}  # MMD on 16 samples is noisy
    m = build_method(
        tiny_net(code_channels=c), tiny_method(name, lr=lr, **extra), 40, generator=gen
    )
    hist = [h[metric] for h in _run(m, 40, batch)]
    first, last = sum(hist[:5]) / 5, sum(hist[-5:]) / 5
    assert last < first - 0.05 * abs(first), (name, first, last)


def test_dplc_leaves_generator_bit_identical():
    net = tiny_net(code_channels=2)
    x = fixed_batch(16)
    g_star = _trained_generator(x)
    before = {k: v.clone() for k, v in g_star.state_dict().items()}
    m = build_method(net, tiny_method("dplc"), 20, generator=g_star)
    assert isinstance(m, DPLC)
    inner_before = {k: v.clone() for k, v in m.codec.generator.state_dict().items()}
    _run(m, 20, lambda n: x[:n])
    for k, v in m.codec.generator.state_dict().items():
        assert torch.equal(v, inner_before[k]), k
        assert torch.equal(v, before[k]), k
    enc_changed = any(
        not torch.equal(p, q)
        for p, q in zip(
            m.codec.encoder.parameters(),
            build_method(net, tiny_method("dplc"), 1, generator=g_star).codec.encoder.parameters(),
            strict=True,
        )
    )
    assert enc_changed


def test_dplc_at_rate_zero_samples_the_generator():
    net = tiny_net(code_channels=0)
    g_star = Generator(net).eval()
    m = build_method(net, tiny_method("dplc"), 1, generator=g_star)
    assert m.codec.mode == "prior" and m.trainable_parameters() == 0
    sym = m.codec.encode(fixed_batch(4))
    torch.manual_seed(0)
    out = m.codec.decode(sym, seed=7)
    z = torch.randn(4, net.latent_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert torch.allclose(out, g_star(z))


def test_cae_at_rate_zero_outputs_the_training_mean():
    x = fixed_batch(16)
    m = build_method(tiny_net(code_channels=0), tiny_method("cae", batch_size=16), 3)
    _run(m, 3, lambda n: x[:n])
    out = m.codec.decode(m.codec.encode(x), seed=0)
    assert torch.allclose(out, x.mean(0, keepdim=True).expand_as(out), atol=1e-6)


def test_gc_at_rate_zero_is_a_pure_gan():
    x = fixed_batch(16)
    m = build_method(tiny_net(code_channels=0), tiny_method("gc"), 2)
    metrics = _run(m, 2, lambda n: x[:n])[-1]
    assert metrics["loss"] == pytest.approx(m.cfg.lambda_gan * metrics["adv"], rel=1e-4)


def test_generator_of_and_errors():
    m = build_method(tiny_net(), tiny_method("wpp"), 1)
    assert isinstance(generator_of(m), Generator)
    with pytest.raises(ValueError, match="does not train an unconstrained generator"):
        generator_of(build_method(tiny_net(code_channels=1), tiny_method("cae"), 1))
    with pytest.raises(ValueError, match="needs a trained generator"):
        build_method(tiny_net(code_channels=1), tiny_method("dplc"), 1)


def test_bf16_step_runs_and_is_finite():
    x = fixed_batch(16)
    m = build_method(tiny_net(), tiny_method("wpp"), 2, precision="bf16")
    for v in _run(m, 2, lambda n: x[:n])[-1].values():
        assert v == v and abs(v) < 1e6


def test_unknown_method_rejected():
    from dplc.config import ConfigError

    with pytest.raises(ConfigError, match="unknown method"):
        MethodConfig(name="vae")


@pytest.mark.parametrize("name", ["wgan_gp", "wae", "wpp"])
def test_generator_weight_average(name):
    """ema_decay > 0: G* is the average θ_ema ← d·θ_ema + (1 − d)·θ with the warm-up
    d = min(decay, (1 + t)/(10 + t)); BatchNorm statistics follow the live generator."""
    x = fixed_batch(16)
    torch.manual_seed(0)
    m = build_method(tiny_net(), tiny_method(name, ema_decay=0.99, lr=3e-3), 10)
    assert generator_of(m) is not generator_of(m, average=False)
    ema_params = lambda: [p.detach().clone() for p in generator_of(m).parameters()]  # noqa: E731
    live_params = lambda: [p.detach().clone() for p in generator_of(m, average=False).parameters()]  # noqa: E731
    before = ema_params()
    assert all(torch.equal(a, b) for a, b in zip(before, live_params(), strict=True))
    for t in (1, 2):
        prev = ema_params()
        _run(m, 1, lambda n: x[:n])
        d = min(0.99, (1 + t) / (10 + t))
        for e, p, q in zip(ema_params(), live_params(), prev, strict=True):
            torch.testing.assert_close(e, d * q + (1 - d) * p)
    assert not all(torch.equal(a, b) for a, b in zip(ema_params(), live_params(), strict=True))
    live_bufs = dict(generator_of(m, average=False).named_buffers())
    for k, b in generator_of(m).named_buffers():
        assert torch.equal(b, live_bufs[k]), k
    assert not any(p.requires_grad for p in generator_of(m).parameters())


def test_no_weight_average_by_default():
    m = build_method(tiny_net(), tiny_method("wpp"), 10)
    assert "generator_ema" not in m.modules and generator_of(m) is m.generator


def test_dplc_dual_raises_lambda_when_realism_is_violated_and_resumes_it():
    """Every dual step raises λ while the held-out MMD exceeds ε, and the multiplier and step
    count travel with the method's state."""
    x = fixed_batch(16)
    g_star = _trained_generator(x)
    cfg = tiny_method("dplc", lambda_rate=5.0, mmd_epsilon=1.0, dual_every=2, dual_step=0.5)
    m = build_method(tiny_net(code_channels=2), cfg, 6, generator=g_star, holdout=fixed_batch(64, seed=1),
                     calibration=x)
    assert isinstance(m.holdout_mmd_sd(seed=3), float)  # the real measurement runs
    m.holdout_mmd_sd = lambda seed=0: 5.0  # a violated constraint (the measure: test_realism.py)
    hist = _run(m, 6, lambda n: x[:n])
    measured = [h["holdout_mmd_sd"] for h in hist if "holdout_mmd_sd" in h]
    assert measured == [5.0, 5.0, 5.0]
    assert m.dual.lam > 5.0 and m.dual.updates == 3
    other = build_method(tiny_net(code_channels=2), cfg, 6, generator=g_star)
    other.load_state_dict(m.state_dict())
    assert other.dual.lam == m.dual.lam and other.steps_done == 6


@pytest.mark.parametrize("images", [0, 12])
def test_dplc_realism_gradient_can_be_kept_out_of_the_encoder(images):
    """realism_grad='decoder': E's gradient is the distortion's alone (the same for λ = 0 and a
    huge λ); with 'all' the MMD term reaches E through the quantizer. Both for the step's batch
    and for a realism term on its own images (``realism_images``)."""
    x = fixed_batch(16)
    g_star = _trained_generator(x)

    def encoder_grad(where: str, lam: float) -> list[torch.Tensor]:
        torch.manual_seed(0)
        extra = {"realism_images": images, "realism_draws": 1} if images else {}
        cfg = tiny_method("dplc", realism_grad=where, lambda_rate=lam, **extra)
        m = build_method(tiny_net(code_channels=2), cfg, 1, generator=g_star)
        torch.manual_seed(1)
        m.step(lambda n: x[:n])
        return [p.grad.clone() for p in m.codec.encoder.parameters()]

    same = encoder_grad("decoder", 1e-6), encoder_grad("decoder", 1e3)
    assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(*same, strict=True))
    moved = encoder_grad("all", 1e-6), encoder_grad("all", 1e3)
    assert not all(torch.allclose(a, b, atol=1e-7) for a, b in zip(*moved, strict=True))


def test_dplc_realism_term_on_its_own_images(monkeypatch):
    """With realism_images = W the MMD term draws W fresh images (one noise draw each) besides
    the distortion's batch, and sees W latents; the settings that would mix it with several
    draws per code are refused."""
    import dplc.losses as losses

    x = fixed_batch(16)
    g_star = _trained_generator(x)
    cfg = tiny_method("dplc", realism_images=12, realism_draws=1)
    m = build_method(tiny_net(code_channels=2), cfg, 2, generator=g_star)  # no BatchNorm recalibration yet
    asked: list[int] = []
    seen: list[int] = []
    mmd = losses.mmd_imq
    monkeypatch.setattr(losses, "mmd_imq", lambda a, b, *r, **k: (seen.append(a.shape[0]), mmd(a, b, *r, **k))[1])

    def batch(n: int) -> torch.Tensor:
        asked.append(n)
        return x[:n]

    m.step(batch)
    assert asked == [cfg.batch_size, 12] and seen == [12]
    with pytest.raises(ConfigError, match="realism_draws: 1"):
        tiny_method("dplc", realism_images=12, realism_draws=4)
    with pytest.raises(ConfigError, match="realism_images"):
        tiny_method("dplc", realism_images=1, realism_draws=1)


def _assert_resuming_repeats(m: DPLC, build, steps: int, batch) -> None:
    """A checkpoint of ``m`` now, loaded into a fresh ``build()``, trains the next ``steps``
    steps to the same weights and λ_rate as ``m`` itself (same random draws)."""
    state = copy.deepcopy(m.state_dict())
    torch.manual_seed(7)
    _run(m, steps, batch)
    resumed = build()
    resumed.load_state_dict(state)
    torch.manual_seed(7)
    _run(resumed, steps, batch)
    for a, b in zip(m.codec.parameters(), resumed.codec.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.dual.lam == m.dual.lam


def test_dplc_free_fraction_trains_distortion_alone_then_the_constraint_afresh(monkeypatch):
    """free_fraction = 0.5 of 8 steps: steps 1-4 have no realism term, no dual step and report
    λ_rate 0; step 5 starts a fresh Adam at the full learning rate (the free phase's schedule had
    decayed it) with the schedule of the 4 steps left, and the constraint applies from there.
    A run resumed inside the constrained phase repeats the uninterrupted one."""
    import dplc.losses as losses

    x = fixed_batch(16)
    g_star = _trained_generator(x)
    cfg = tiny_method("dplc", free_fraction=0.5, realism_images=12, realism_draws=1, dual_every=1,
                      lambda_rate=5.0, lr=3e-3)  # fmt: skip
    net = tiny_net(code_channels=2, noise=False)

    def build() -> DPLC:
        m = build_method(net, cfg, 8, generator=g_star, holdout=fixed_batch(64, seed=1),
                     calibration=x)
        m.holdout_mmd_sd = lambda seed=0: 5.0  # a violated constraint: every dual step raises λ
        return m

    calls: list[int] = []
    mmd = losses.mmd_imq
    monkeypatch.setattr(losses, "mmd_imq", lambda a, b, *r, **k: (calls.append(a.shape[0]), mmd(a, b, *r, **k))[1])
    torch.manual_seed(0)
    m = build()
    free_opt = m.optimizers["codec"]
    hist = _run(m, 4, lambda n: x[:n])
    assert calls == [] and m.dual.updates == 0 and m.dual.lam == 5.0
    assert all(h["lambda_rate"] == 0.0 and "mmd" not in h for h in hist)
    assert free_opt.param_groups[0]["lr"] == pytest.approx(3e-3 * 0.4**2)  # decayed at steps 2 and 3
    out = m.step(lambda n: x[:n])
    assert m.optimizers["codec"] is not free_opt and m.optimizers["codec"].param_groups[0]["lr"] == 3e-3
    assert calls == [12] and "mmd" in out and out["lambda_rate"] > 5.0 and m.dual.updates == 1
    m.end_step()
    _run(m, 1, lambda n: x[:n])
    _assert_resuming_repeats(m, build, 2, lambda n: x[:n])  # a checkpoint taken at step 6
    with pytest.raises(ConfigError, match="free_fraction"):
        tiny_method("dplc", free_fraction=1.0)


def test_dplc_settle_fraction_restarts_at_the_decayed_rate_with_the_dual_at_its_start():
    """free 3 + constrained 3 + settling 3 of 9 steps (0.333333 each, rounded): step 7 starts a
    fresh Adam at the learning rate the constrained phase's decays left (lr × 0.4²), with a
    schedule of its own, and λ_rate back at ``lambda_rate``; a run resumed inside the settling
    phase repeats the uninterrupted one."""
    x = fixed_batch(16)
    g_star = _trained_generator(x)
    cfg = tiny_method("dplc", free_fraction=0.333333, settle_fraction=0.333333, realism_images=12,
                      realism_draws=1, dual_every=1, lambda_rate=5.0, mmd_epsilon=1.0, dual_step=0.25,
                      lr=3e-3)  # fmt: skip
    net = tiny_net(code_channels=2, noise=False)

    def build() -> DPLC:
        m = build_method(net, cfg, 9, generator=g_star, holdout=fixed_batch(64, seed=1),
                     calibration=x)
        m.holdout_mmd_sd = lambda seed=0: 5.0  # a violated constraint: every dual step raises λ
        return m

    torch.manual_seed(0)
    m = build()
    assert (m.free_steps, m.constrained_steps, m.settle_steps) == (3, 3, 3)
    _run(m, 6, lambda n: x[:n])
    constrained_opt, lam_before = m.optimizers["codec"], m.dual.lam
    assert lam_before > 5.0 and m.dual.updates == 3
    assert constrained_opt.param_groups[0]["lr"] == pytest.approx(3e-3 * 0.4**2)
    out = m.step(lambda n: x[:n])  # step 7: the settling phase starts
    assert m.optimizers["codec"] is not constrained_opt
    assert m.optimizers["codec"].param_groups[0]["lr"] == pytest.approx(3e-3 * 0.4**2)
    assert out["lambda_rate"] == pytest.approx(5.0 * math.exp(0.25 * 4.0)) and m.dual.updates == 1
    m.end_step()
    _run(m, 1, lambda n: x[:n])
    assert m.optimizers["codec"].param_groups[0]["lr"] == pytest.approx(3e-3 * 0.4**4)  # its own decays, at 1 and 2
    _assert_resuming_repeats(m, build, 1, lambda n: x[:n])  # a checkpoint taken at step 8
    without = tiny_method("dplc", free_fraction=0.333333, realism_images=12, realism_draws=1)
    assert build_method(net, without, 9, generator=g_star).settle_steps == 0
    with pytest.raises(ConfigError, match="settle_fraction"):
        tiny_method("dplc", free_fraction=0.5, settle_fraction=0.5)
    with pytest.raises(ConfigError, match="settle_fraction"):
        tiny_method("dplc", settle_fraction=-0.1)


def test_wpp_adversarial_target_is_selectable():
    x = fixed_batch(16)
    for target in ("mixture", "encoded"):
        torch.manual_seed(0)
        m = build_method(tiny_net(), tiny_method("wpp", adv_target=target), 2)
        out = _run(m, 2, lambda n: x[:n])[-1]
        assert out["adv"] == out["adv"]
    z = torch.randn(4, 16)
    enc = build_method(tiny_net(), tiny_method("wpp", adv_target="encoded"), 1)
    assert torch.equal(enc._adversarial_latent(z), z)
    assert tiny_method("wpp").adv_target == "encoded"  # the paper's term is the default
    mix = build_method(tiny_net(), tiny_method("wpp", adv_target="mixture"), 1)
    assert not torch.equal(mix._adversarial_latent(z), z)
    from dplc.config import ConfigError

    with pytest.raises(ConfigError, match="adv_target"):
        tiny_method("wpp", adv_target="both")


def test_dplc_recalibrates_batchnorm_after_its_last_step():
    """After the last step E's running statistics are the training batches' own, so E decodes
    the same in inference mode as with batch statistics (here every batch is the same)."""
    x = fixed_batch(16)
    g_star = _trained_generator(x)
    m = build_method(tiny_net(code_channels=2), tiny_method("dplc", lr=3e-3), 5, generator=g_star)
    _run(m, 5, lambda n: x[:n])
    enc = m.codec.encoder
    with torch.no_grad():
        inference = enc.eval()(x)
        batch_stats = enc.train()(x)
    assert torch.allclose(inference, batch_stats, atol=2e-2)
    stale = build_method(tiny_net(code_channels=2), tiny_method("dplc", lr=3e-3), 50, generator=g_star)
    _run(stale, 5, lambda n: x[:n])  # 5 of 50 steps: no recalibration yet, stats trail the weights
    with torch.no_grad():
        gap = (stale.codec.encoder.eval()(x) - stale.codec.encoder.train()(x)).abs().max()
    assert gap > 2e-2


def test_dplc_recalibration_averages_cfg_bn_batches_batches_and_leaves_g_star_alone():
    """The last step draws ``bn_batches`` extra batches for E's and B's statistics, G*'s stay as
    trained and in eval mode; a count below 1 is refused."""
    x = fixed_batch(16)
    g_star = _trained_generator(x)
    frozen = {k: v.clone() for k, v in g_star.state_dict().items()}
    calls = []

    def batch(n):
        calls.append(n)
        return x[:n]

    m = build_method(tiny_net(code_channels=2), tiny_method("dplc", bn_batches=7), 2, generator=g_star)
    _run(m, 2, batch)
    steps_only = len(calls)
    calls.clear()
    m.recalibrate_batchnorm(batch)
    assert len(calls) == 7
    assert steps_only >= 2 + 7  # the last of the 2 steps drew the 7 as well
    assert not m.codec.generator.training and m.codec.encoder.training
    for k, v in m.codec.generator.state_dict().items():
        assert torch.equal(v, frozen[k]), k
    with pytest.raises(ConfigError, match="bn_batches"):
        tiny_method("dplc", bn_batches=0)


def test_the_method_vocabulary_describes_the_classes_it_names():
    """Every name of dplc.method_specs has its class and no other; a spec's kind (critic,
    generative, noisy decoder, frozen G*) is what the built method actually is."""
    assert list(METHOD_CLASSES) == list(BY_NAME)
    g_star = Generator(tiny_net())
    images_per_step = {}
    for name, spec in BY_NAME.items():
        c = 0 if spec.generative else 2
        m = build_method(tiny_net(code_channels=c, noise=spec.decoder_noise), tiny_method(name), 1,
                         generator=g_star if spec.into_generator else None)  # fmt: skip
        assert ("critic" in m.modules) == spec.critic, name
        assert ("codec" in m.modules) == spec.per_rate, name
        if spec.per_rate:
            assert m.codec.net.noise == spec.decoder_noise, name
        images_per_step[name] = images_per_step_of(m)
    cfg = tiny_method("wpp")
    assert images_per_step["wpp"] == cfg.batch_size + cfg.n_critic * cfg.critic_batch_size
    assert images_per_step["wae"] == tiny_method("wae").batch_size


def test_a_method_needing_g_star_is_refused_without_it():
    with pytest.raises(ValueError, match="dplc needs a trained generator G\\* \\(from wgan_gp, wae, wpp\\)"):
        build_method(tiny_net(code_channels=1), tiny_method("dplc"), 1)


RANDOM_FACTORIES = {"rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial"}


def device_draws(source: str) -> list[int]:
    """Lines of ``source`` that draw random numbers on a tensor's device rather than from torch's
    CPU generator: a ``*_like`` factory (``randn_like(x)`` draws on ``x``'s device) or a random
    factory given ``device=``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        like = name.endswith("_like") and name.removesuffix("_like") in RANDOM_FACTORIES
        on_device = name in RANDOM_FACTORIES and any(k.arg == "device" for k in node.keywords)
        if like or on_device:
            lines.append(node.lineno)
    return lines


def test_the_draw_check_sees_device_side_draws():
    """The check below flags what it must (built to fail) and passes CPU draws moved over."""
    bad = "a = torch.randn_like(z)\nb = torch.rand(n, 1, device=x.device)\n"
    good = "a = torch.randn(*z.shape).to(z.device)\nb = torch.zeros(3, device=x.device)\n"
    assert device_draws(bad) == [1, 2]
    assert device_draws(good) == []


def test_training_draws_come_from_the_cpu_generator():
    """Every random draw of the library comes from torch's CPU generator and is then moved to
    the device (Method.randn/rand), so a GPU run draws the CPU run's noise and no CUDA RNG state
    enters training (on a GPU, wpp's MMD prior sample and gradient-penalty α once did not)."""
    root = Path(__file__).resolve().parent.parent / "dplc"
    found = {p.name: device_draws(p.read_text()) for p in sorted(root.glob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}


class _GaussianB(torch.nn.Module):
    """A B whose latents are exactly N(0, I) before its last layer, a BatchNorm1d with affine
    weight ``gamma`` as :class:`dplc.nets.StochasticMap` ends: u ~ U[-Δ/2, Δ/2] → Φ⁻¹ per
    coordinate (the code is ignored)."""

    def __init__(self, dim: int, step: float, gamma: float) -> None:
        super().__init__()
        self.dim, self.step = dim, step
        self.norm = torch.nn.BatchNorm1d(dim)
        self.norm.weight.data.fill_(gamma)

    def forward(self, code: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        p = (noise.flatten(1)[:, : self.dim] / self.step + 0.5).clamp(1e-6, 1 - 1e-6)
        return self.norm(math.sqrt(2.0) * torch.erfinv(2.0 * p - 1.0))


def test_dplc_holdout_check_sees_latents_shrunk_five_percent():
    """B ends in BatchNorm1d. Read in training mode (``check_bn_batches`` = 0) the held-out
    latents are standardised with their own moments, and latents shrunk by 5% read within
    ε = 1; re-estimated on training images and read in eval mode (the default) the same shrink
    reads above 2 (the evaluate stage's bound), while exact N(0, I) latents read below it. (The
    held-out noise and the calibration draws come from separate streams: from one stream the
    shrink read 1.07.)"""
    x = fixed_batch(16)
    g_star = _trained_generator(x)
    net = tiny_net(code_channels=2)

    def mean_reading(gamma: float, batches: int) -> float:
        cfg = tiny_method("dplc", check_bn_batches=batches, mmd_epsilon=1.0)
        m = build_method(net, cfg, 1, generator=g_star, holdout=fixed_batch(500, seed=1), calibration=x)
        m.codec.bmap = _GaussianB(net.latent_dim, m.codec.quantizer.step, gamma)
        return sum(m.holdout_mmd_sd(seed=s) for s in range(8)) / 8

    shrunk_own, shrunk, exact = mean_reading(0.95, 0), mean_reading(0.95, 128), mean_reading(1.0, 128)
    assert shrunk_own < 1.0 < 2.0 < shrunk and exact < 2.0
