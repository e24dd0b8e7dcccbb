import numpy as np
import pytest
import torch
from _tiny import fixed_batch, tiny_net

from dplc import evaluation, featnet, metrics
from dplc.bundle import CodecBundle
from dplc.codec import build_codec
from dplc.data import to_uint8
from dplc.entropy import EntropyModel


@pytest.fixture(scope="module")
def featnet_path(tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (512,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    centres = torch.tensor([[8, 8], [8, 24], [24, 8], [24, 24]])[labels]
    blobs = torch.exp(-((xx - centres[:, 0, None, None]) ** 2 + (yy - centres[:, 1, None, None]) ** 2) / 20.0)
    images = (blobs * 255).to(torch.uint8).unsqueeze(1)
    net, _ = featnet.train_featnet(images, labels, epochs=1, batch_size=64, flip=False)
    return featnet.save_featnet(net, tmp_path_factory.mktemp("f") / "featnet.safetensors"), images


def test_fid_and_kid_zero_for_same_set_and_grow_with_noise(featnet_path):
    path, images = featnet_path
    same = metrics.fid_kid(images, images, path)
    assert abs(same["fid_featnet"]) < 1e-3 and abs(same["kid_featnet"]) < 1e-3
    g = torch.Generator().manual_seed(1)
    fids, kids = [], []
    for sigma in (10, 40, 90):
        noisy = (images.float() + sigma * torch.randn(images.shape, generator=g)).clamp(0, 255).to(torch.uint8)
        r = metrics.fid_kid(images, noisy, path)
        fids.append(r["fid_featnet"])
        kids.append(r["kid_featnet"])
    assert fids[0] > same["fid_featnet"] and fids == sorted(fids) and fids[-1] > 10 * max(fids[0], 1e-3)
    assert kids == sorted(kids) and kids[-1] > kids[0]


def test_pv_zero_for_deterministic_and_positive_for_noisy_decoder():
    x = fixed_batch(8)
    det = build_codec(tiny_net(code_channels=2, noise=False), "map").eval()
    noisy = build_codec(tiny_net(code_channels=0), "prior").eval()  # decodes are G(z), z ~ N(0, I)
    with torch.no_grad():  # an untrained G barely moves; give it weights that respond to z
        for p in noisy.generator.parameters():
            p.normal_(0.0, 0.3)
    for codec, positive in ((det, False), (noisy, True)):
        sym = codec.encode(x)
        pv = metrics.conditional_pixel_variance(lambda s, c=codec, sy=sym: c.decode(sy, seed=s), repeats=10)
        assert (pv > 1e-6) == positive and pv >= 0


def test_mse_and_psnr():
    x = fixed_batch(4)
    assert metrics.mse(x, x) == 0 and metrics.psnr(x, x) == float("inf")
    assert metrics.psnr(x + 0.2, x) < metrics.psnr(x + 0.05, x)


def test_evaluate_codec_reports_every_metric(featnet_path):
    path, _ = featnet_path
    torch.manual_seed(0)
    codec = build_codec(tiny_net(code_channels=2), "map").eval()
    test = np.ascontiguousarray(to_uint8(fixed_batch(32, seed=3))[:, :, 2:30, 2:30].permute(0, 2, 3, 1).numpy())
    model = EntropyModel.fit(codec.encode(fixed_batch(32)), 2)
    bundle = CodecBundle(codec, model, "eval")
    m = evaluation.evaluate_codec(bundle, test, path, pv_batch=8, pv_repeats=5, sample_fid=True)
    for key in ("mse", "psnr", "rfid_featnet", "rkid_featnet", "sfid_featnet", "pv", "bpp_fixed", "bpp_payload", "bpp_file",
                "rfid_featnet_sd", "sfid_featnet_sd"):
        assert key in m and np.isfinite(m[key]), key
    assert 0 < m["rfid_featnet_sd"] < m["rfid_featnet"]
    assert m["bits_fixed"] == 32 and m["bpp_fixed"] == pytest.approx(32 / 784)
    assert m["bpp_file"] > m["bpp_payload"]
    assert m["pv"] > 0


def test_real_features_are_cached_per_images_and_weights(featnet_path, monkeypatch, tmp_path):
    """The test set's features are extracted once per process; a cached result equals an
    uncached one, and other images or other feature weights get their own cache entry."""
    path, images = featnet_path
    monkeypatch.setattr(metrics, "_CACHE_DIR", None)  # a fresh cache folder for this test
    g = torch.Generator().manual_seed(2)
    noisy = (images.float() + 30 * torch.randn(images.shape, generator=g)).clamp(0, 255).to(torch.uint8)
    metrics.fid_kid(images, images, path)  # fills the cache for `images`
    cached = metrics.fid_kid(images, noisy, path)
    names = {p.name.split("-dplc")[0] for p in metrics._CACHE_DIR.glob("real-*")}
    metrics.fid_kid(noisy, images, path)  # other real images: a second key
    other = tmp_path / "other.safetensors"
    net, _ = featnet.train_featnet(images[:128], torch.zeros(128, dtype=torch.long), epochs=1, batch_size=64, flip=False)
    featnet.save_featnet(net, other)
    metrics.fid_kid(images, noisy, other)  # other weights: a third key
    after = {p.name.split("-dplc")[0] for p in metrics._CACHE_DIR.glob("real-*")}
    assert len(names) == 1 and len(after) == 3 and names < after
    monkeypatch.setattr(metrics, "_real_cache", lambda *a: {"cache": False})
    plain = metrics.fid_kid(images, noisy, path)
    assert cached == pytest.approx(plain, rel=1e-9, abs=1e-12)


def test_noise_split_adds_up_and_sees_a_deterministic_decoder():
    x = torch.zeros(4, 1, 8, 8)
    same = metrics.noise_split(lambda seed: x + 0.5, x, repeats=5)
    assert same["pv"] == 0.0 and same["mse_mean_decode"] == pytest.approx(0.25)
    noisy = metrics.noise_split(
        lambda seed: x + 0.1 + torch.randn(x.shape, generator=torch.Generator().manual_seed(seed)), x, 20
    )
    assert noisy["mse_pv_images"] == pytest.approx(noisy["mse_mean_decode"] + noisy["pv"] * 19 / 20, rel=1e-9)
    assert noisy["pv"] == pytest.approx(1.0, rel=0.15)


def test_inversion_floor_finds_images_in_the_generators_range():
    from dplc.nets import Generator

    torch.manual_seed(0)
    g = Generator(tiny_net()).eval()
    with torch.no_grad():
        reachable = g(torch.randn(4, 16))
        spread = float((g(torch.randn(4, 16)) - reachable).pow(2).mean())
    floor = metrics.inversion_floor(g, reachable, steps=200, restarts=1)
    assert floor < 0.1 * spread


def test_bootstrap_fid_is_torch_fidelitys_and_its_spread_shrinks_with_the_sample(featnet_path):
    """dplc.fid_noise computes the very FID that fid_kid reports (same features, same Fréchet
    distance), and its bootstrap s.d. falls roughly as 1/√n."""
    from dplc import fid_noise

    path, images = featnet_path
    noisy = (images.float() + 40 * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 255).to(torch.uint8)
    full = metrics.fid_kid(images, noisy, path)["fid_featnet"]
    real, fake = fid_noise.featnet_features(images, path), fid_noise.featnet_features(noisy, path)
    assert fid_noise.fid(real, fake) == pytest.approx(full, rel=1e-4)  # channels-last rounding aside
    n = images.shape[0]
    small = fid_noise.fid_sd(real[: n // 4], fake[: n // 4], draws=20)
    large = fid_noise.fid_sd(real, fake, draws=20)
    assert large < small


class _LinearGenerator(torch.nn.Module):
    """G(z) = A z as 8×8 images: its realistic inversion floor has a closed form."""

    latent_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(8, 64, bias=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.a(z).view(-1, 1, 8, 8)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_realistic_inversion_floor_pays_the_transport_from_the_data_to_the_prior(scale):
    """Images G(z) with z ~ N(0, s²I): the free inversion reaches them all, but latents held to
    N(0, I) cannot. The cheapest realistic latents are z/s (Brenier's map between N(0, s²M) and
    N(0, M) with M = AᵀA), so the floor is (1 − 1/s)²·E‖x‖² per pixel: 0 when the images come
    from G's own prior, a quarter of their energy at s = 2. A floor that ignored the constraint
    would report the free inversion's ~0 there and fail. At 384 points the MMD test cannot
    tell N(0, I) from latents a little wider, so the measured floor may sit below the exact
    one (0.16-0.19 of the energy against 0.25 over three seeds here)."""
    torch.manual_seed(0)
    g = _LinearGenerator().eval()
    with torch.no_grad():
        x = g(scale * torch.randn(384, 8, generator=torch.Generator().manual_seed(3)))
    r = metrics.realistic_inversion_floor(g, x, steps=(150, 250))
    assert r["feasible"]
    energy = float(x.pow(2).mean())
    assert r["free_mse"] < 0.01 * energy
    assert r["latent_mmd_sd"] <= 1.0
    exact = (1 - 1 / scale) ** 2 * energy
    if scale > 1:  # a floor that ignored the constraint would be the free one, ~0
        assert r["free_latent_mmd_sd"] > 10
        # below the exact-realism optimum by what 384 points cannot tell apart, above it
        # by the optimiser's slack
        assert 0.4 * exact < r["mse"] < 1.15 * exact
    else:
        assert r["mse"] < 0.01 * energy


def test_kid_of_whole_sets_is_one_subset_and_a_strict_subset_still_draws_many():
    """When each KID subset is the whole of both sets, every draw is the same two sets in
    another order: one subset gives the mean of many (fid_kid then draws one)."""
    from torch_fidelity.metric_kid import kid_features_to_metric

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 16, generator=g).double(), (torch.randn(64, 16, generator=g) + 0.3).double()
    key_mean, key_sd = "kernel_inception_distance_mean", "kernel_inception_distance_std"
    one = kid_features_to_metric(a, b, kid_subsets=1, kid_subset_size=64, verbose=False)
    many = kid_features_to_metric(a, b, kid_subsets=20, kid_subset_size=64, verbose=False)
    assert one[key_mean] == pytest.approx(many[key_mean], rel=1e-9) and many[key_sd] <= 1e-9 * abs(many[key_mean])
    part = kid_features_to_metric(a, b, kid_subsets=20, kid_subset_size=32, verbose=False)
    assert part[key_sd] > 1e-3 * abs(part[key_mean])  # strict subsets differ: there, many draws
    assert metrics.kid_subsets(64, 64, 64) == 1 and metrics.kid_subsets(64, 64, 32) == metrics.KID_SUBSETS
