import numpy as np
import pytest

from dplc import classical, metrics


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:28, 0:28]
    out = []
    for _ in range(6):
        cx, cy = rng.uniform(6, 22, 2)
        out.append(255 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 40.0) + rng.normal(0, 8, (28, 28)))
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)[..., None]


@pytest.mark.parametrize("name", ["jpeg", "webp", "jpegxl", "jpeg2000", "avif", "heif"])
def test_bpp_and_psnr_rise_with_quality(images, name):
    assert name in classical.available()
    qs = classical.QUALITIES[name]
    lo, hi = qs[0], qs[-1]
    dec_lo, bytes_lo, payload_lo = classical.code_images(name, images, lo)
    dec_hi, bytes_hi, payload_hi = classical.code_images(name, images, hi)
    assert dec_lo.shape == images.shape and dec_lo.dtype == np.uint8
    assert bytes_hi > bytes_lo and payload_hi > payload_lo
    if name == "jpegxl":  # the bare codestream: its few header bytes are counted as payload
        assert 0 < payload_lo <= bytes_lo
    else:
        assert 0 < payload_lo < bytes_lo
    import torch

    t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    assert metrics.psnr(t(dec_hi), t(images)) > metrics.psnr(t(dec_lo), t(images))


def test_evaluate_classical_sweeps_quality(images):
    res = classical.evaluate_classical(images, None, ["jpeg", "webp"], qualities={"jpeg": [10, 50, 90], "webp": [10, 90]})
    assert [p["quality"] for p in res["jpeg"]] == [10, 50, 90]
    bpps = [p["bpp_file"] for p in res["jpeg"]]
    assert bpps == sorted(bpps)
    assert all(p["bpp_payload"] < p["bpp_file"] for p in res["webp"])


def test_process_pool_gives_the_same_sweep(images):
    """Coding in worker processes changes where the work runs, not one byte of the result."""
    q = {"jpeg": [10, 90], "webp": [20]}
    one = classical.evaluate_classical(images, None, ["jpeg", "webp"], qualities=q)
    two = classical.evaluate_classical(images, None, ["jpeg", "webp"], qualities=q, workers=2)
    assert one == two
    dec1, total1, payload1 = classical.code_images("jpeg", images, 30)
    assert total1 > payload1 > 0 and dec1.shape == images.shape
