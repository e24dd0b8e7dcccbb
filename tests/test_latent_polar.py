"""dplc.latent_polar: the polar dither code in a generator's latent."""

import math
import subprocess
import sys

import pytest
import torch

from dplc import latent_polar as LP

N = 50_000
KS_999 = 1.95 / math.sqrt(N)
"""The 99.9% quantile of the KS distance between N exact samples and their law."""
DIM = 6


def _ks_normal(t: torch.Tensor) -> float:
    s = torch.special.ndtr(t.double()).sort().values
    i = torch.arange(1, s.numel() + 1, dtype=torch.float64)
    return float(torch.maximum(i / s.numel() - s, s - (i - 1) / s.numel()).max())


def _latents(n: int, seed: int) -> torch.Tensor:
    """Latents off N(0, I) the way an encoder's are: shifted, scaled 0.7–1.3, correlated."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.eye(DIM, dtype=torch.float64) + 0.3 * torch.tensor([[1.0 if j == i + 1 else 0.0 for j in range(DIM)] for i in range(DIM)],
                                                                   dtype=torch.float64)  # fmt: skip
    scale = torch.linspace(0.7, 1.3, DIM, dtype=torch.float64)
    return 0.2 + (torch.randn(n, DIM, generator=g, dtype=torch.float64) * scale) @ mix


def _u(n: int, seed: int) -> torch.Tensor:
    """Dither for the law tests (``LP.dither``'s keying has its own test)."""
    return torch.rand(n, DIM, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rotation(seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


def _code(whiten: bool, bits: float = 8.0) -> LP.LatentPolarCode:
    code = LP.fit(_latents(200_000, 0), _rotation(1), [4.0, 3.0, 2.0, 1.5, 1.0, 0.5], bits, budget=16)
    if whiten:
        return code
    eye = torch.eye(DIM, dtype=torch.float64)
    return LP.LatentPolarCode(torch.zeros(DIM, dtype=torch.float64), eye, code.axes, code.rings)


def test_dither_is_keyed_on_seed_and_index_not_on_batching():
    whole = LP.dither(7, 10, 5)
    parts = torch.cat([LP.dither(7, 3, 5), LP.dither(7, 7, 5, first=3)])
    assert torch.equal(whole, parts)
    assert whole.dtype == torch.float64 and bool(((whole >= 0) & (whole < 1)).all())
    assert not torch.equal(whole, LP.dither(8, 10, 5))
    code = "import sys; sys.path.insert(0, '.'); from dplc import latent_polar as LP; print(LP.dither(7, 10, 5).numpy().tobytes().hex())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == whole.numpy().tobytes().hex()
    with pytest.raises(ValueError, match="seed"):
        LP.dither(-1, 1, 1)


def test_whitening_gives_zero_mean_and_identity_covariance():
    z = _latents(100_000, 2)
    mu, w = LP.whitening(z)
    t = (z - mu) @ w
    assert float(t.mean(0).abs().max()) < 1e-9
    assert float((torch.cov(t.T) - torch.eye(DIM, dtype=torch.float64)).abs().max()) < 1e-9
    assert torch.allclose(w, w.T)  # ZCA: symmetric, the whitening nearest the identity
    with pytest.raises(ValueError, match="singular"):
        LP.whitening(torch.cat([z[:, :1], z[:, :1]], 1))
    with pytest.raises(ValueError, match="more latents"):
        LP.whitening(z[:DIM])


def test_whitened_code_decodes_to_the_prior_and_the_raw_one_does_not():
    """The decode is N(0, I) when the whitened latent is: per-coordinate KS below its 99.9%
    quantile. Power: the same latents coded without whitening fail by more than 3x."""
    z = _latents(N, 3)
    u = _u(N, 11)
    code = _code(whiten=True)
    assert max(_ks_normal(c) for c in code.decode(code.encode(z, u), u).T) < KS_999
    raw = _code(whiten=False)
    assert max(_ks_normal(c) for c in raw.decode(raw.encode(z, u), u).T) > 3 * KS_999


def test_wrong_dither_keeps_the_law_and_raises_the_error():
    z = _latents(N, 4)
    code = _code(whiten=True)
    u, other = _u(N, 12), _u(N, 13)
    m = code.encode(z, u)
    target = (z - code.shift) @ code.whiten
    right, wrong = code.decode(m, u), code.decode(m, other)
    assert max(_ks_normal(c) for c in wrong.T) < KS_999
    assert float((wrong - target).pow(2).mean()) > 1.2 * float((right - target).pow(2).mean())


def test_split_fits_the_budget_favours_heavy_pairs_and_caps_each_pair():
    front = LP.frontier(16)
    assert [f[0] for f in front] == list(range(1, 17))
    errors = [f[1] for f in front]
    assert errors[0] == max(errors) and errors[-1] == min(errors)  # one message: a prior sample
    weights = [4.0, 2.0, 1.0, 0.5, 0.25]
    for bits in (2.0, 6.0, 12.0):
        used = [math.log2(sum(r)) for r in LP.split(weights, bits, front)]
        assert sum(used) <= bits + 1e-9
        assert used == sorted(used, reverse=True)  # the heavier pair never gets fewer bits
    assert all(sum(r) == 1 for r in LP.split(weights, 0.0, front))
    assert all(sum(r) == 16 for r in LP.split(weights, 1000.0, front))  # capped: 4 bits a pair
    assert _code(whiten=True, bits=1000.0).bits == 3 * 4.0  # budget 16: 4 bits for each of 3 pairs


def test_bad_shapes_and_messages_are_refused():
    code = _code(whiten=True)
    z, u = _latents(4, 5), LP.dither(1, 4, DIM)
    with pytest.raises(ValueError, match="latents must have shape"):
        code.encode(z[:, :4], u)
    with pytest.raises(ValueError, match="dither must have shape"):
        code.encode(z, u[:3])
    m = code.encode(z, u)
    m[0, 0] = sum(code.rings[0])
    with pytest.raises(ValueError, match="pair 0's messages"):
        code.decode(m, u)
    with pytest.raises(ValueError, match="pairs' rings"):
        LP.LatentPolarCode(code.shift, code.whiten, code.axes, code.rings[:2])


def test_messages_pack_to_fixed_length_bytes_and_back():
    rings = ((3, 5), (1,), (7,), (4, 6, 7))  # 8 · 1 · 7 · 17 = 952 messages: 10 bits, 2 bytes
    assert LP.image_bytes(rings) == 2 and LP.image_bytes(((1,),)) == 1
    g = torch.Generator().manual_seed(0)
    m = torch.stack([torch.randint(0, sum(r), (100,), generator=g) for r in rings], 1)
    data = LP.pack(m, rings)
    assert len(data) == 200 and torch.equal(LP.unpack(data, rings, 100), m)
    top = torch.tensor([[sum(r) - 1 for r in rings]])
    assert torch.equal(LP.unpack(LP.pack(top, rings), rings, 1), top)
    with pytest.raises(ValueError, match="take 200 bytes"):
        LP.unpack(data[:-1], rings, 100)
    with pytest.raises(ValueError, match="past the code's 952 messages"):
        LP.unpack(b"\xff\xff", rings, 1)
    with pytest.raises(ValueError, match="outside"):
        LP.pack(top + 1, rings)
