"""dplc.noise: the counter-based decoder noise is exact, batch-free and of the right law."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dplc import noise
from dplc.noise import NoiseSpec, draw, spec_for

UNIFORM = NoiseSpec("uniform", (2, 4, 4), scale=1.0)
NORMAL = NoiseSpec("normal", (33,), scale=1.0)


@pytest.mark.parametrize("spec", [UNIFORM, NORMAL])
def test_any_batch_split_gives_the_same_noise(spec: NoiseSpec) -> None:
    whole = draw(spec, seed=12345, count=10)
    parts = np.concatenate([draw(spec, 12345, 3), draw(spec, 12345, 6, first=3), draw(spec, 12345, 1, first=9)])
    assert whole.dtype == np.float32 and whole.shape == (10, *spec.shape)
    assert np.array_equal(whole, parts)


def test_seeds_and_images_get_different_noise() -> None:
    a, b = draw(UNIFORM, 1, 2), draw(UNIFORM, 2, 2)
    assert not np.array_equal(a, b)
    assert not np.array_equal(a[0], a[1])
    top = draw(UNIFORM, (1 << 64) - 1, 1, first=(1 << 40))  # the whole key space is usable
    assert top.shape == (1, 2, 4, 4)


def test_another_process_draws_bit_identical_noise() -> None:
    code = (
        "import json, sys; from dplc.noise import NoiseSpec, draw; "
        "s = NoiseSpec(sys.argv[1], (5,), 0.5); "
        "print(json.dumps(draw(s, 99, 3, first=7).view('uint32').tolist()))"
    )
    for spec in (NoiseSpec("uniform", (5,), 0.5), NoiseSpec("normal", (5,), 0.5)):
        out = subprocess.run([sys.executable, "-c", code, spec.kind], capture_output=True, text=True, check=True)
        theirs = np.array(json.loads(out.stdout), dtype=np.uint32).view(np.float32)
        assert np.array_equal(theirs, draw(spec, 99, 3, first=7))


def test_laws() -> None:
    """U[-Δ/2, Δ/2] and N(0, 1): range, moments and independence of neighbours."""
    delta = 0.5
    u = draw(NoiseSpec("uniform", (16,), delta), 3, 4000).ravel().astype(np.float64)
    assert -delta / 2 <= u.min() and u.max() < delta / 2
    assert abs(u.mean()) < 0.005 and abs(u.var() - delta**2 / 12) < 0.001
    z = draw(NORMAL, 4, 3000).ravel().astype(np.float64)
    assert abs(z.mean()) < 0.02 and abs(z.var() - 1) < 0.03
    assert abs(np.mean(z[:-1] * z[1:])) < 0.02  # the cos and sin halves of a pair are uncorrelated
    assert abs(np.mean(z**4) - 3) < 0.15  # Gaussian kurtosis


def test_a_broken_generator_fails_the_law_check() -> None:
    """The moment check above has power: Box-Muller with u2 reused for both halves fails it."""
    z = draw(NORMAL, 4, 3000).astype(np.float64)
    broken = np.repeat(z[:, 0::2], 2, axis=1).ravel()  # the pairs' halves made equal
    assert abs(np.mean(broken[:-1] * broken[1:])) > 0.2


def test_spec_for_every_mode_and_bad_input() -> None:
    assert spec_for("map", 32, 2, 4, 1.0) == NoiseSpec("uniform", (2, 4, 4), 1.0)
    assert spec_for("map", 32, 0, 4, 1.0).kind == "none"
    assert spec_for("prior", 32, 2, 4, 1.0) == NoiseSpec("normal", (32,), 1.0)
    assert spec_for("mean", 32, 0, 4, 1.0).kind == "none"
    assert not draw(spec_for("mean", 32, 0, 4, 1.0), 1, 3).any()
    with pytest.raises(ValueError, match="seed"):
        draw(UNIFORM, -1, 1)
    with pytest.raises(ValueError, match="noise kind"):
        NoiseSpec("laplace", (1,))
    assert noise.KINDS == ("none", "uniform", "normal")
