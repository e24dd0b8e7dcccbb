"""Metrics of Tschannen et al. 2018: MSE, PSNR, conditional pixel variance, bpp, and FID/KID via torch-fidelity.

All distortion metrics take images in [-1, 1]. FID and KID are computed by torch-fidelity over
a registered feature extractor (never a hand-written Fréchet distance); the metric names say
which features were used: ``*_featnet`` for the domain classifier, ``*_inception`` for
Inception-v3 when its weights file is available locally.

>>> import torch
>>> x = torch.full((2, 1, 4, 4), -1.0)           # black
>>> round(mse(x + 0.1, x), 6), round(psnr(x + 10 / 127.5, x), 2)  # 10 grey levels off
(0.01, 28.13)
"""

from __future__ import annotations

import atexit
import hashlib
import math
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from dplc.codec import Codec
from dplc.data import to_uint8


def mse(x_hat: Tensor, x: Tensor) -> float:
    """Mean squared error on the [-1, 1] scale (the paper's)."""
    return float(((x_hat.double() - x.double()) ** 2).mean())


def psnr(x_hat: Tensor, x: Tensor) -> float:
    """PSNR in dB on [0, 255]: MSE on [-1, 1] times 127.5², peak 255, over the whole set."""
    m = mse(to_uint8(x_hat).double() / 127.5 - 1.0, to_uint8(x).double() / 127.5 - 1.0) * 127.5**2
    return float("inf") if m == 0 else 10.0 * math.log10(255.0**2 / m)


def conditional_pixel_variance(decode: Callable[[int], Tensor], repeats: int = 100) -> float:
    """PV: decode the same inputs ``repeats`` times with fresh noise (``decode(seed)``); the mean
    over pixels of the per-pixel variance across decodes (Tschannen et al. 2018)."""
    decodes = torch.stack([decode(seed).double() for seed in range(repeats)])
    return float(decodes.var(dim=0, unbiased=True).mean())


class _Uint8Set(torch.utils.data.Dataset):
    """torch-fidelity wants datasets of uint8 (C, H, W) tensors."""

    def __init__(self, images: Tensor) -> None:
        self.images = images if images.dtype == torch.uint8 else to_uint8(images)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


_CACHE_DIR: Path | None = None


def _real_cache(real: Tensor, *weights: str | Path | None) -> dict:
    """torch-fidelity options that cache the features of ``real`` within this process.

    Every codec (and every classical quality point) is compared with the same test images, so
    their features are extracted once. The key hashes the images and the feature weights; the
    cache lives in a private temporary folder of this process, removed at exit, so nothing
    stale or foreign is ever read back (torch-fidelity's cache files are pickles).
    """
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = Path(tempfile.mkdtemp(prefix="dplc-fid-"))
        atexit.register(shutil.rmtree, _CACHE_DIR, True)
    h = hashlib.sha256(_Uint8Set(real).images.contiguous().numpy().tobytes())
    for w in weights:
        if w is not None:
            h.update(Path(w).read_bytes())
    return {"cache": True, "cache_root": str(_CACHE_DIR), "input1_cache_name": f"real-{h.hexdigest()[:24]}"}


KID_SUBSETS = 100
"""KID's subsets (torch-fidelity's default): the mean of the unbiased MMD² over that many random
subsets of ``kid_subset_size`` images from each set (Bińkowski et al. 2018, "Demystifying MMD
GANs", §4)."""


def kid_subsets(n_real: int, n_fake: int, subset: int) -> int:
    """How many KID subsets to draw: :data:`KID_SUBSETS`, or 1 when each subset is the whole of
    both sets (``subset`` equals both sizes), where every draw is the same two sets in another
    order and the MMD², invariant to order, comes out the same each time.

    >>> kid_subsets(10_000, 10_000, 1000), kid_subsets(500, 500, 500), kid_subsets(500, 800, 500)
    (100, 1, 100)
    """
    return 1 if n_real == n_fake == subset else KID_SUBSETS


def fid_kid(
    real: Tensor,
    fake: Tensor,
    featnet_path: str | Path | None = None,
    inception_path: str | Path | None = None,
    kid_subset_size: int = 1000,
    batch_size: int = 500,
) -> dict[str, float]:
    """FID and KID between two image sets (uint8, or float in [-1, 1]) through torch-fidelity.

    Uses the domain feature network at ``featnet_path`` (keys ``fid_featnet``, ``kid_featnet``)
    and, when ``inception_path`` names a local weights file, Inception-v3 as well
    (``fid_inception``, ``kid_inception``; 3-channel 299x299 resizing is torch-fidelity's).
    The features of ``real`` are cached for the rest of the process (:func:`_real_cache`).
    """
    import torch_fidelity

    from dplc import featnet

    out: dict[str, float] = {}
    n = min(real.shape[0], fake.shape[0])
    subset = min(kid_subset_size, n)
    common = dict(
        input1=_Uint8Set(real), input2=_Uint8Set(fake), cuda=False, fid=True, kid=True,
        kid_subset_size=subset, kid_subsets=kid_subsets(real.shape[0], fake.shape[0], subset),
        batch_size=batch_size, verbose=False, save_cpu_ram=True,
    )  # fmt: skip
    if featnet_path is not None:
        featnet.register()
        m = torch_fidelity.calculate_metrics(
            **common,
            **_real_cache(real, featnet_path),
            feature_extractor=featnet.EXTRACTOR_NAME,
            feature_extractor_weights_path=str(featnet_path),
            feature_layer_fid=featnet.FEATURE_LAYER,
            feature_layer_kid=featnet.FEATURE_LAYER,
        )
        out["fid_featnet"] = float(m["frechet_inception_distance"])
        out["kid_featnet"] = float(m["kernel_inception_distance_mean"])
    if inception_path is not None:
        from dplc import inception

        inception.check_weights(inception_path)  # missing or not a plain state dict: refused
        rgb = lambda t: t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t  # noqa: E731
        m = torch_fidelity.calculate_metrics(
            **(
                common
                | {
                    "input1": _Uint8Set(rgb(_Uint8Set(real).images)),
                    "input2": _Uint8Set(rgb(_Uint8Set(fake).images)),
                }
                | _real_cache(real, inception_path)
            ),
            feature_extractor="inception-v3-compat",
            feature_extractor_weights_path=str(inception_path),
        )
        out["fid_inception"] = float(m["frechet_inception_distance"])
        out["kid_inception"] = float(m["kernel_inception_distance_mean"])
    return out


def noise_split(decode: Callable[[int], Tensor], x: Tensor, repeats: int) -> dict[str, float]:
    """PV and the split of the MSE into the noise-averaged decode's error plus PV.

    For one image, E_u‖x − x̂_u‖² = ‖x − x̄‖² + E_u‖x̂_u − x̄‖² with x̄ = E_u[x̂_u]: the error
    of the mean decode plus the conditional variance (per pixel: ``mse_mean_decode`` and
    ``pv``, over ``repeats`` decodes with seeds 0..repeats-1; ``pv`` is the unbiased variance
    of the paper's definition, so ``mse_pv_images`` ≈ ``mse_mean_decode`` + ``pv``·(R−1)/R).
    """
    decodes = torch.stack([decode(seed).double() for seed in range(repeats)])
    x = x.double()
    return {
        "pv": float(decodes.var(dim=0, unbiased=repeats > 1).mean()),
        "mse_mean_decode": float((decodes.mean(0) - x).pow(2).mean()),
        "mse_pv_images": float((decodes - x).pow(2).mean()),
    }


def latent_realism(codec: Codec, images: Tensor, seed: int = 0) -> float:
    """The latent MMD of B(Q(E(x)), u) (B(Q(E(x, u)), u) with shared noise) on ``images`` against N(0, I), in null s.d. at that
    sample size (:func:`dplc.realism.latent_mmd_sd`): how far the decoder's input is from the
    prior G* was trained on, the quantity DPLC's realism constraint holds down."""
    from dplc import realism

    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        noise = codec.draw_noise(images.shape[0], gen)
        latent = codec.latent(codec.code(images, noise), noise)
    null = realism.mmd_null(images.shape[0], codec.net.latent_dim, seed=seed)
    return realism.latent_mmd_sd(latent, null, seed=seed + 1)


def latent_realism_draws(codec: Codec, images: Tensor, draws: int) -> tuple[float, float]:
    """Mean and s.d. of ``draws`` readings of :func:`latent_realism` (seeds 0, 1, ...: each a
    fresh decoder-noise draw and null sample). One reading of a codec's latents spreads by
    about one null s.d. between draws, as much as the target's margin, so a single draw can
    pass a codec whose expected reading fails, or fail one that passes; the mean of eight has
    a third of that spread (docs/metrics.md, the table's "latent MMD" row)."""
    if draws < 1:
        raise ValueError(f"latent_realism_draws needs at least one draw, got {draws}")
    values = torch.tensor([latent_realism(codec, images, seed=s) for s in range(draws)], dtype=torch.float64)
    return float(values.mean()), float(values.std()) if draws > 1 else 0.0


def inversion_floor(generator: torch.nn.Module, x: Tensor, steps: int = 300, lr: float = 0.05,
                    restarts: int = 2, seed: int = 0) -> float:  # fmt: skip
    """G*'s inversion floor: the MSE of min_z ‖G(z) − x‖² per image, by Adam from ``restarts``
    N(0, I) starts (the best kept per image). No code through G* can do better, so a DPLC MSE
    above twice the CAE's can be traced to G* when this floor is high."""
    generator = _frozen(generator)
    gen = torch.Generator().manual_seed(seed)
    x = x.float()
    dim = int(generator.latent_dim)
    best = torch.full((x.shape[0],), float("inf"))
    for _ in range(restarts):
        z = torch.randn(x.shape[0], dim, generator=gen).requires_grad_(True)
        _invert(generator, x, z, steps, lr)
        with torch.no_grad():
            best = torch.minimum(best, _error(generator, z, x))
    return float(best.mean())


def _frozen(generator: torch.nn.Module) -> torch.nn.Module:
    """``generator`` in eval mode with its weights out of autograd (latents are what moves)."""
    generator = generator.eval()
    for p in generator.parameters():
        p.requires_grad_(False)
    return generator


def _error(generator: torch.nn.Module, z: Tensor, x: Tensor) -> Tensor:
    """Per-image MSE of G(z) against x."""
    return (generator(z) - x).pow(2).flatten(1).mean(1)


def _invert(generator: torch.nn.Module, x: Tensor, z: Tensor, steps: int, lr: float) -> None:
    """``steps`` Adam steps on the latents ``z`` (in place) towards min ‖G(z_i) − x_i‖² per image."""
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        _error(generator, z, x).sum().backward()
        opt.step()


def realistic_inversion_floor(
    generator: torch.nn.Module, x: Tensor, steps: tuple[int, int] = (300, 300),
    lr: tuple[float, float] = (0.05, 0.02), epsilon: float = 1.0, dual_every: int = 10,
    penalty_points: int = 512, seed: int = 0,
) -> dict[str, float | bool]:  # fmt: skip
    """G*'s inversion floor under DPLC's realism constraint: min over one latent z_i per image of
    mean_i ‖G(z_i) − x_i‖² subject to latent MMD(z, N(0, I)) ≤ ``epsilon`` null s.d. on the set
    (the measure of :func:`dplc.realism.latent_mmd_sd`, at the set's size).

    The latents of any DPLC codec into G* that meets the constraint on these images are one
    feasible point, so no such codec decodes them better at any rate: this is the infinite-rate
    limit of realistic decoding through G*. First ``steps[0]`` Adam steps invert G* freely from
    N(0, I) starts (``free_mse``, ``free_latent_mmd_sd``: how far G*'s best latents are from its
    prior), then ``steps[1]`` steps of MSE + λ·MMD(z_S, fresh prior sample) on a random subset S
    of ``penalty_points`` latents (an unbiased estimate of the set's MMD at a fraction of its
    cost), λ by the dual ascent of :class:`dplc.realism.DualLambda` from the whole set's MMD
    every ``dual_every`` steps (Tschannen et al. 2018, Eq. 5 with λ the constraint's
    multiplier). Returns the best feasible point the dual ascent visited (``mse``,
    ``latent_mmd_sd``; ``feasible`` False and the last point when none was): the optimiser's
    best, so an estimate of the true minimum from above."""
    from dplc import losses, realism

    generator = _frozen(generator)
    gen = torch.Generator().manual_seed(seed)
    x, n, dim = x.float(), x.shape[0], int(generator.latent_dim)
    null = realism.mmd_null(n, dim, seed=seed)
    z = torch.randn(n, dim, generator=gen).requires_grad_(True)

    def error() -> Tensor:
        return _error(generator, z, x)

    def measure(at: int) -> float:
        return realism.latent_mmd_sd(z.detach(), null, seed=seed + 1 + at)

    _invert(generator, x, z, steps[0], lr[0])
    with torch.no_grad():
        out: dict[str, float | bool] = {"free_mse": float(error().mean()), "free_latent_mmd_sd": measure(0)}
    dual = realism.DualLambda(0.1, epsilon)
    opt = torch.optim.Adam([z], lr=lr[1])
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1.0 - i / (steps[1] + 1))
    best: dict[str, float | bool] = {"mse": float("inf"), "feasible": False}
    point = best
    m = min(n, penalty_points)
    for step in range(1, steps[1] + 1):
        opt.zero_grad(set_to_none=True)
        subset = torch.randperm(n, generator=gen)[:m]
        prior = torch.randn(m, dim, generator=gen)
        (error().mean() + dual.lam * losses.mmd_imq(z[subset], prior)).backward()
        opt.step()
        decay.step()
        if step % dual_every == 0 or step == steps[1]:
            s = measure(step)
            with torch.no_grad():
                point = {"mse": float(error().mean()), "latent_mmd_sd": s, "lambda": dual.lam, "feasible": s <= epsilon}
            if point["feasible"] and point["mse"] < best["mse"]:
                best = point
            dual.update(s)
    return out | (best if best["feasible"] else point)
