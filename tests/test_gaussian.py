import math
from dataclasses import replace

import pytest
import torch

from dplc import gaussian as G
from dplc import gaussian_study as S


def test_config_is_strict():
    with pytest.raises(ValueError, match="unknown gaussian settings"):
        G.GaussianConfig.from_dict({"variance": [1.0]})
    with pytest.raises(ValueError, match="positive"):
        G.GaussianConfig(variances=(1.0, -1.0))
    assert G.GaussianConfig.from_dict({"rates": [0, 2], "levels": 4}).bits(2) == 4.0
    with pytest.raises(ValueError, match="decoder_hidden"):
        G.GaussianConfig(decoder_hidden=-1)
    with pytest.raises(ValueError, match="moment_decay"):
        G.GaussianConfig(moment_decay=1.0)


def test_per_rate_settings_apply_to_their_rate_only_and_are_checked():
    cfg = G.GaussianConfig.from_dict({"rates": [0, 4, 8], "steps": 100, "per_rate": {"8": {"steps": 400, "decoder_hidden": 64}}})
    assert [cfg.at_rate(c).steps for c in cfg.rates] == [100, 100, 400]
    assert cfg.at_rate(8).decoder_hidden == 64 and cfg.at_rate(4).decoder_hidden == 0
    with pytest.raises(ValueError, match="per_rate"):  # a rate it does not train
        G.GaussianConfig(rates=(0, 4), per_rate={8: {"steps": 400}})
    with pytest.raises(ValueError, match="per_rate"):  # a setting common to all rates
        G.GaussianConfig(rates=(0, 4), per_rate={4: {"hidden": 64}})
    with pytest.raises(ValueError, match="decoder_hidden"):  # a value the section would refuse
        G.GaussianConfig(rates=(0, 4), per_rate={4: {"decoder_hidden": -1}})


def test_small_run_codes_and_keeps_the_distribution():
    cfg = G.GaussianConfig(
        variances=(1.0, 0.25), rates=(0, 4), steps=400, generator_steps=400, hidden=32,
        batch_size=256, test_size=20_000, threads=1,
    )  # fmt: skip
    res = S.run(cfg, log=lambda *_: None)
    assert res["bits"] == [0.0, 4.0]
    # CAE at rate 0 decodes the mean: MSE = mean variance; coding 4 bits helps both codecs
    assert res["mse_cae"][0] == pytest.approx(0.625, rel=0.05)
    assert res["mse_cae"][1] < 0.6 * res["mse_cae"][0]
    assert res["mse_dplc"][1] < res["mse_dplc"][0]
    # DPLC at rate 0 samples G*: about twice the variance; its decodes keep the distribution
    assert 1.6 < res["mse_ratio"][0] < 2.4
    assert res["w2_dplc"][1] < 0.05
    # G*'s own share of a decode's variance error: one per component, on exact N(0, I) latents
    assert len(res["generator_variance_error"]) == 2 and max(map(abs, res["generator_variance_error"])) < 0.2
    # the CAE's decodes do not (they shrink towards conditional means)
    assert res["w2_cae"][1] > res["w2_dplc"][1]
    assert all(r >= d for r, d in zip(res["mse_cae"], res["d_opt"], strict=True))
    # DPLC / 2·D_K splits into its code's quality and B's; at rate 0 the one cell's MMSE is D_1
    code, b = res["gaussian_dplc_code_over_dk"], res["gaussian_dplc_over_2code"]
    assert res["gaussian_dplc_over_2dk"] == pytest.approx([x * y for x, y in zip(code, b, strict=True)])
    assert code[0] == pytest.approx(1.0, rel=0.02) and code[1] > 0.9
    # the code's exact floor at perfect realism lies between E Var(X | J) + D_K and 2·E Var(X | J)
    floor = res["gaussian_dplc_floor_over_2dk"]
    for f, j in zip(floor, code, strict=True):
        assert (j + 1) / 2 * 0.99 <= f <= j * 1.001
    assert res["gaussian_dplc_over_floor"] == pytest.approx([m / f for m, f in zip(res["gaussian_dplc_over_2dk"], floor, strict=True)])


def test_two_worker_processes_give_the_same_results():
    """Each codec is trained from its own seeds (a continuation from its private codec's state):
    spreading them over processes changes nothing."""
    kw = dict(variances=(1.0, 0.25), rates=(0, 2), steps=30, per_rate={2: {"steps": 60}}, generator_steps=30, hidden=16,
              batch_size=64, test_size=1_000, threads=1, shared="encoder", starts=("scratch", "private"),
              continue_steps=10)  # fmt: skip
    one = S.run(G.GaussianConfig(**kw), log=lambda *_: None)
    two = S.run(G.GaussianConfig(**kw, workers=2), log=lambda *_: None)
    for key in ("mse_cae", "mse_dplc", "w2_dplc", "var_dplc", "candidates_dplc", "candidates_dplc_shared"):
        assert one[key] == two[key], key
    # the longer C = 2 jobs run first; their results still land at C = 2 (rate 0: the mean, 0.625)
    assert one["mse_cae"][0] == pytest.approx(0.625, rel=0.05) and one["mse_cae"][1] < one["mse_cae"][0]
    with pytest.raises(ValueError, match="workers"):
        G.GaussianConfig(workers=0)


def test_nan_loss_is_reported():
    cfg = G.GaussianConfig(variances=(1.0,), rates=(1,), steps=5, generator_steps=5, hidden=8, batch_size=16)
    src = G.Source(cfg.variances, 0)
    src.std = torch.tensor([float("nan")])
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        G.train_codec(cfg, 1, src)





def _trained(cfg, c, shared, blind=False, seed=0):
    torch.manual_seed(seed)
    gen = G.mlp(cfg.dim, cfg.dim, cfg.hidden).eval()
    torch.manual_seed(seed + 1)
    return G.train_codec(cfg, c, G.Source(cfg.variances, seed + 2), gen, shared, blind)


@pytest.mark.parametrize("shared", ["encoder", "dither"])
def test_shared_codec_round_trip_and_its_noise_matters(shared):
    cfg = G.GaussianConfig(variances=(1.0, 0.25), rates=(2,), steps=80, hidden=16, batch_size=64,
                           realism_holdout=200, dual_every=20)  # fmt: skip
    codec, info = _trained(cfg, 2, shared)
    assert codec.shared == shared and info["lambda_rate"] > 0
    x = G.Source(cfg.variances, 9).sample(500)
    same, _ = codec(x, torch.Generator().manual_seed(3))
    again, _ = codec(x, torch.Generator().manual_seed(3))
    assert torch.equal(same, again)  # the seed decides everything
    wrong, _ = codec(x, torch.Generator().manual_seed(3), decoder_gen=torch.Generator().manual_seed(4))
    assert not torch.equal(same, wrong)
    with pytest.raises(ValueError, match="shared must be one of"):
        G.GaussianConfig(shared="both")


def test_shared_codec_with_its_noise_zeroed_at_the_encoder_is_the_private_codec():
    """W_U starts at zero and a zeroed U gives it no gradient: the blind shared codec trains
    bit for bit as the private one (same seeds, same draws)."""
    cfg = G.GaussianConfig(variances=(1.0, 0.25), rates=(1,), steps=60, hidden=16, batch_size=64,
                           realism_holdout=200, dual_every=20)  # fmt: skip
    private, p_info = _trained(cfg, 1, None)
    blind, b_info = _trained(cfg, 1, "encoder", blind=True)
    assert p_info == b_info
    assert torch.count_nonzero(blind.encoder_noise) == 0
    theirs = blind.state_dict()
    for k, a in private.state_dict().items():
        assert torch.equal(a, theirs[k]), k
    seeing, _ = _trained(cfg, 1, "encoder")
    assert torch.count_nonzero(seeing.encoder_noise) > 0  # with U it learns to use it


def test_the_shared_codec_started_from_the_private_one_decodes_as_it_then_learns_u():
    """W_U = 0 at the start: the shared ``encoder`` form loaded from the private codec decodes
    every vector exactly as the private codec under the same noise; trained on, it uses U. A codec
    of another rate does not nest."""
    cfg = G.GaussianConfig(variances=(1.0, 0.25), rates=(2,), steps=60, hidden=16, batch_size=64,
                           realism_holdout=200, dual_every=20)  # fmt: skip
    private, info = _trained(cfg, 2, None)
    start = G.GaussianCodec(cfg, 2, private.generator, "encoder")
    G.load_start(start, private)
    x = G.Source(cfg.variances, 9).sample(300)
    a, _ = private(x, torch.Generator().manual_seed(3))
    b, _ = start.eval()(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    warm = cfg.continuation(2, info["lambda_rate"])
    assert (warm.steps, warm.lr, warm.rate_warmup, warm.lambda_rate) == (2500, 1e-4, 0.0, info["lambda_rate"])
    torch.manual_seed(1)
    shared, _ = G.train_codec(replace(warm, steps=40), 2, G.Source(cfg.variances, 2), private.generator,
                              "encoder", start=private)  # fmt: skip
    assert torch.count_nonzero(shared.encoder_noise) > 0
    other = G.GaussianCodec(cfg, 1, private.generator, "encoder")
    with pytest.raises(ValueError, match="other shapes"):
        G.load_start(other, private)
    with pytest.raises(ValueError, match="does not nest"):
        G.load_start(G.GaussianCodec(cfg, 2), private)  # a CAE


def test_the_study_continues_the_private_codec_and_keeps_the_better_start():
    """``starts: [scratch, private]``: each DPLC is also continued from the private codec of its
    rate (after it, in the same run); the figures from scratch are those of a run without that
    start, the continuations those of training by hand, and the study keeps per codec and rate
    the start :func:`choose` picks."""
    kw = dict(variances=(1.0, 0.25), rates=(0, 2), steps=30, generator_steps=30, hidden=16, batch_size=64,
              test_size=1_000, threads=1, realism_holdout=200, dual_every=10, shared="encoder",
              continue_steps=20)  # fmt: skip
    cfg = G.GaussianConfig(**kw, starts=("scratch", "private"))
    res = S.run(cfg, log=lambda *_: None)
    alone = S.run(G.GaussianConfig(**kw), log=lambda *_: None)
    assert alone["start_dplc"] == ["scratch", "scratch"] and set(alone["candidates_dplc"][1]) == {"scratch"}
    for name in ("dplc", "dplc_shared"):
        cands = res[f"candidates_{name}"]
        assert set(cands[0]) == {"scratch"} and set(cands[1]) == {"scratch", "private"}  # C = 0 has no code
        assert cands[1]["scratch"]["mse"] == alone[f"mse_{name}"][1]
        kept = S.choose([dict(v, start=k) for k, v in cands[1].items()], cfg.mmd_epsilon)
        assert res[f"start_{name}"][1] == kept["start"] and res[f"mse_{name}"][1] == cands[1][kept["start"]]["mse"]
    assert res["mse_cae"] == alone["mse_cae"]
    torch.manual_seed(cfg.seed)
    g = G.train_generator(cfg, G.Source(cfg.variances, cfg.seed)).state_dict()
    torch.set_num_threads(1)
    source, generator = S.job_seeds(cfg, 2, "dplc", g)
    private, info = G.train_codec(cfg, 2, source, generator)
    source, generator = S.job_seeds(cfg, 2, "dplc_shared", g)
    shared, _ = G.train_codec(cfg.continuation(2, info["lambda_rate"]), 2, source, generator, "encoder", start=private)
    test = G.Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
    assert G.evaluate(shared, test, cfg.variances, cfg.seed + 3)["mse"] == res["candidates_dplc_shared"][1]["private"]["mse"]
    with pytest.raises(ValueError, match="starts must be distinct"):
        G.GaussianConfig(starts=("scratch", "warm"))
    with pytest.raises(ValueError, match="needs dplc among the codecs and shared: encoder"):
        G.GaussianConfig(shared="dither", starts=("private",))
    with pytest.raises(ValueError, match="needs dplc among the codecs"):
        G.GaussianConfig(shared="encoder", starts=("private",), codecs=("cae", "dplc_shared"))
    with pytest.raises(ValueError, match="continue_steps"):
        G.GaussianConfig(continue_steps=0)


def test_a_dplc_on_the_caes_frozen_encoder_keeps_its_code_and_trains_b_alone():
    """With ``encoder`` the private DPLC's E is the CAE's, unchanged by training (the nearest-
    neighbour term included), so its code and E Var(X | J) are the CAE's; B still learns. A shared
    codec or an encoder of another rate is refused."""
    cfg = G.GaussianConfig(variances=(1.0, 0.25), rates=(2,), steps=40, hidden=16, batch_size=64,
                           realism_holdout=200, dual_every=20, nearest_weight=1.0)  # fmt: skip
    torch.manual_seed(5)
    cae, _ = G.train_codec(cfg, 2, G.Source(cfg.variances, 6))
    before = {k: v.clone() for k, v in cae.encoder.state_dict().items()}
    torch.manual_seed(0)
    gen = G.mlp(cfg.dim, cfg.dim, cfg.hidden).eval()
    torch.manual_seed(1)
    untrained = G.GaussianCodec(cfg, 2, gen)
    torch.manual_seed(1)
    dplc, info = G.train_codec(cfg, 2, G.Source(cfg.variances, 2), gen, encoder=cae.encoder)
    for k, v in dplc.encoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(dplc.decoder[0].weight, untrained.decoder[0].weight)
    x = G.Source(cfg.variances, 9).sample(2_000)
    assert torch.equal(dplc.encode(x), cae.encode(x)) and info["lambda_rate"] > 0
    m = G.evaluate(dplc, x, cfg.variances, seed=3)
    assert m["code_mmse"] == G.evaluate(cae, x, cfg.variances, seed=3)["code_mmse"]
    with pytest.raises(ValueError, match="private DPLC"):
        G.freeze_encoder(G.GaussianCodec(cfg, 2, gen, "encoder"), cae.encoder)
    with pytest.raises(ValueError, match="does not fit"):
        G.freeze_encoder(G.GaussianCodec(cfg, 1, gen), cae.encoder)
    with pytest.raises(ValueError, match="private DPLC"):
        G.freeze_encoder(cae, cae.encoder)  # a CAE


def test_the_study_trains_the_private_dplc_on_the_caes_encoder_and_keeps_the_better_start():
    """``starts: [scratch, cae]``: at C > 0 the private DPLC is also trained on the CAE's trained E
    (after the CAE, in the same run), its figures those of training by hand; the shared codec and
    C = 0 keep their one start, and the scratch figures are those of a run without it."""
    kw = dict(variances=(1.0, 0.25), rates=(0, 2), steps=30, generator_steps=30, hidden=16, batch_size=64,
              test_size=1_000, threads=1, realism_holdout=200, dual_every=10, shared="encoder")  # fmt: skip
    cfg = G.GaussianConfig(**kw, starts=("scratch", "cae"))
    res = S.run(cfg, log=lambda *_: None)
    alone = S.run(G.GaussianConfig(**kw), log=lambda *_: None)
    cands = res["candidates_dplc"]
    assert set(cands[0]) == {"scratch"} and set(cands[1]) == {"scratch", "cae"}
    assert [set(x) for x in res["candidates_dplc_shared"]] == [{"scratch"}, {"scratch"}]
    assert cands[1]["scratch"]["mse"] == alone["mse_dplc"][1] and res["mse_cae"] == alone["mse_cae"]
    kept = S.choose([dict(v, start=k) for k, v in cands[1].items()], cfg.mmd_epsilon)
    assert res["start_dplc"][1] == kept["start"] and res["mse_dplc"][1] == cands[1][kept["start"]]["mse"]
    torch.manual_seed(cfg.seed)
    g = G.train_generator(cfg, G.Source(cfg.variances, cfg.seed)).state_dict()
    torch.set_num_threads(1)
    source, _ = S.job_seeds(cfg, 2, "cae", g)
    cae, _ = G.train_codec(cfg, 2, source)
    source, generator = S.job_seeds(cfg, 2, "dplc", g)
    dplc, _ = G.train_codec(cfg, 2, source, generator, encoder=cae.encoder)
    test = G.Source(cfg.variances, cfg.seed + 10_000).sample(cfg.test_size)
    assert G.evaluate(dplc, test, cfg.variances, cfg.seed + 3)["mse"] == cands[1]["cae"]["mse"]
    with pytest.raises(ValueError, match="needs cae and dplc"):
        G.GaussianConfig(starts=("scratch", "cae"), codecs=("dplc", "dplc_shared"))


def test_a_rate_may_train_only_some_starts():
    """``per_rate: {C: {starts: [cae]}}``: at that rate the private DPLC trains on the CAE's E
    alone (no job from its seeds) and gives what it gives beside the other starts; the other
    rates keep the section's starts. A shared codec that must train needs a start it can take."""
    kw = dict(variances=(1.0, 0.25), rates=(0, 1, 2), steps=30, generator_steps=30, hidden=16, batch_size=64,
              test_size=1_000, threads=1, realism_holdout=200, dual_every=10, codecs=("cae", "dplc"),
              starts=("scratch", "cae"))  # fmt: skip
    cfg = G.GaussianConfig(**kw, per_rate={2: {"starts": ["cae"]}})  # a list, as from params.yaml
    assert cfg.at_rate(2).starts == ("cae",) and cfg.at_rate(1).starts == ("scratch", "cae")
    assert [j[2] for j in S._jobs(cfg, 2, {}, "scratch")] == ["cae"]
    assert [j[2] for j in S._jobs(cfg, 1, {}, "scratch")] == ["cae", "dplc"]
    res = S.run(cfg, log=lambda *_: None)
    both = S.run(G.GaussianConfig(**kw), log=lambda *_: None)
    assert [set(x) for x in res["candidates_dplc"]] == [{"scratch"}, {"scratch", "cae"}, {"cae"}]
    assert res["start_dplc"][2] == "cae" and res["mse_dplc"][2] == both["candidates_dplc"][2]["cae"]["mse"]
    assert res["mse_dplc"][:2] == both["mse_dplc"][:2] and res["mse_cae"] == both["mse_cae"]
    with pytest.raises(ValueError, match="starts must be distinct"):
        G.GaussianConfig(**kw, per_rate={2: {"starts": ["warm"]}})
    with pytest.raises(ValueError, match="shared DPLC trains from its seeds"):
        G.GaussianConfig(**kw | {"codecs": G.CODECS, "shared": "encoder"}, per_rate={2: {"starts": ["cae"]}})


def test_the_kept_start_meets_realism_before_it_is_closer():
    """A start whose held-out checks end past ε is not kept however low its validation MSE; with
    none within ε the first start's codec stays."""
    scratch = {"start": "scratch", "val_mse": 0.30, "holdout_mmd_sd": 0.4, "holdout_moment_sd": None}
    closer = {"start": "private", "val_mse": 0.20, "holdout_mmd_sd": 0.9, "holdout_moment_sd": 0.2}
    assert S.choose([scratch, closer], 1.0)["start"] == "private"
    assert S.choose([scratch, closer | {"holdout_mmd_sd": 1.3}], 1.0)["start"] == "scratch"
    assert S.choose([scratch, closer | {"holdout_moment_sd": 1.1}], 1.0)["start"] == "scratch"
    assert S.choose([scratch | {"holdout_mmd_sd": 2.0}, closer | {"holdout_mmd_sd": 3.0}], 1.0)["start"] == "scratch"


def test_decoding_a_shared_codec_with_the_wrong_noise_raises_the_mse():
    """The dither form into a trained G*: the right seed decodes closer than another seed's noise
    (the encoder chose the code for the decoder's noise). The output distribution is *not*
    kept with the wrong noise (measured in docs/realism.md), so nothing asserts it."""
    cfg = G.GaussianConfig(variances=(1.0,), rates=(2,), steps=1000, generator_steps=800, hidden=64,
                           batch_size=256, realism_holdout=500, dual_every=50, shared="dither")  # fmt: skip
    torch.manual_seed(0)
    generator = G.train_generator(cfg, G.Source(cfg.variances, 2))
    torch.manual_seed(1)
    codec, _ = G.train_codec(cfg, 2, G.Source(cfg.variances, 3), generator, "dither")
    x = G.Source(cfg.variances, 9).sample(4000)
    m = G.evaluate(codec, x, cfg.variances, seed=5)
    assert m["mse"] < 0.6  # it codes (the variance is 1)
    assert m["mse_wrong_noise"] > 1.15 * m["mse"]


@pytest.mark.parametrize("shared", [None, "dither"])
def test_realism_batch_gives_the_mmd_term_vectors_of_its_own(monkeypatch, shared):
    """``realism_batch`` > 0: the realism term sees that many latents every step (not the
    distortion batch's), for the private and the shared codec alike; 1 is refused."""
    with pytest.raises(ValueError, match="realism_batch"):
        G.GaussianConfig(realism_batch=1)
    seen = []
    real = G._realism_latents

    def spy(codec, v, s, cfg, gen):
        z = real(codec, v, s, cfg, gen)
        seen.append(z.shape[0])
        return z

    monkeypatch.setattr(G, "_realism_latents", spy)
    kw = dict(variances=(1.0, 0.25), rates=(2,), steps=6, hidden=8, batch_size=32, realism_holdout=50,
              dual_every=2, realism_draws=1)  # fmt: skip
    _trained(G.GaussianConfig(**kw), 2, shared)
    assert seen == [32] * 6
    seen.clear()
    codec, info = _trained(G.GaussianConfig(**kw, realism_batch=96), 2, shared)
    assert seen == [96] * 6 and info["lambda_rate"] > 0


def test_the_moment_term_sees_its_own_batch_and_its_holdout_steers_the_dual(monkeypatch):
    """``moment_batch`` latents feed the moment gap every step; the held-out moment check joins
    the MMD's, and the dual follows the larger violation: a moment check reading 50 s.d. raises
    λ by the clipped step e^(0.25·4) at every update although the MMD is inside ε."""
    with pytest.raises(ValueError, match="moment_batch"):
        G.GaussianConfig(moment_batch=2)
    with pytest.raises(ValueError, match="realism_draws must be 1"):
        G.GaussianConfig(moment_weight=1.0, realism_draws=4)
    seen = []
    real = G._moment_latents

    def spy(codec, source, cfg, gen):
        z = real(codec, source, cfg, gen)
        seen.append(z.shape[0])
        return z

    monkeypatch.setattr(G, "_moment_latents", spy)
    kw = dict(variances=(1.0, 0.25), rates=(2,), steps=8, hidden=8, batch_size=32, realism_holdout=50,
              dual_every=2, realism_draws=1, rate_warmup=0.0, moment_weight=1.0, moment_batch=96,
              moment_holdout=400, lambda_rate=10.0)  # fmt: skip
    codec, info = _trained(G.GaussianConfig(**kw), 2, None)
    assert seen == [96] * 8 and math.isfinite(info["holdout_moment_sd"])
    monkeypatch.setattr(G, "latent_moment_sd", lambda z, null: 50.0)
    codec, info = _trained(G.GaussianConfig(**kw), 2, None)
    assert info["lambda_rate"] == pytest.approx(10.0 * math.exp(4 * 1.0))


class _Fixed(torch.nn.Module):
    """A decoder that maps each bit to ±2 (the bit's value times ``gain``)."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.gain = gain

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.gain * v


def _fixed_cae(c: int, gain: float = 4.0) -> G.GaussianCodec:
    codec = G.GaussianCodec(G.GaussianConfig(variances=(1.0,) * c, rates=(c,), hidden=8), c)
    codec.decoder = _Fixed(gain)
    return codec


def test_the_nearest_neighbour_targets_are_the_bits_of_the_nearest_decode():
    """One bit at a time: a bit whose flip brings the decode nearer gets the flipped target,
    others keep theirs; the loss's gradient then moves E's value across the boundary."""
    codec = _fixed_cae(2)
    x = torch.tensor([[1.9, -1.5], [-1.9, 0.3], [0.4, 2.5]])
    pre = torch.tensor([[-0.2, -0.7], [-0.1, -0.3], [0.6, -0.05]], requires_grad=True)
    loss = G.nearest_neighbour_loss(codec, x, pre, None, 1, torch.Generator())
    loss.backward()
    # the nearest decode of each row is sign(x) * 2 per bit: the targets are x's signs
    want_up = x > 0
    assert torch.equal(pre.grad < 0, want_up)  # descent raises pre where the target bit is 1


def test_the_nearest_neighbour_term_fails_on_a_decoder_that_inverts_the_bits():
    """Built to break it: with a decoder that maps bit +0.5 to -2, the nearest decode of x > 0 is
    the bit -0.5, so the target is the opposite of x's sign; a loss that ignored the decoder
    (targets from x alone) would push the other way."""
    codec = _fixed_cae(1, gain=-4.0)
    pre = torch.tensor([[0.3], [-0.3]], requires_grad=True)
    G.nearest_neighbour_loss(codec, torch.tensor([[1.5], [-1.5]]), pre, None, 1, torch.Generator()).backward()
    assert pre.grad[0, 0] > 0 and pre.grad[1, 0] < 0  # descent lowers pre for x > 0, raises it for x < 0


def test_the_exhaustive_search_finds_a_nearest_code_that_no_single_flip_reaches():
    """``search="all"`` compares every code: with a decoder whose codeword nearest to x
    is two bit flips away (and each single flip is worse than the code itself), the one-bit
    search keeps the code while the exhaustive one targets the nearest codeword's bits."""

    class Book(torch.nn.Module):  # codes (±0.5, ±0.5) → a codebook that makes flips look bad
        def forward(self, v: torch.Tensor) -> torch.Tensor:
            book = {(-1, -1): 0.0, (-1, 1): 5.0, (1, -1): -5.0, (1, 1): 1.0}
            return torch.tensor([[book[(int(a > 0) * 2 - 1, int(b > 0) * 2 - 1)]] for a, b in v.tolist()])

    codec = G.GaussianCodec(G.GaussianConfig(variances=(1.0,), rates=(2,), hidden=8), 2)
    codec.decoder = Book()
    x = torch.tensor([[0.9]])  # nearest codeword 1.0 at (+, +); its code (-, -) decodes to 0.0
    pre = torch.tensor([[-0.3, -0.3]])
    flips = G.nearest_neighbour_loss(codec, x, pre.clone().requires_grad_(), None, 1, torch.Generator())
    assert torch.equal(G._nearest_codes(codec, x, 2, 1, torch.Generator()), torch.tensor([[0.5, 0.5]]))
    p_all = pre.clone().requires_grad_()
    G.nearest_neighbour_loss(codec, x, p_all, None, 1, torch.Generator(), search="all").backward()
    assert (p_all.grad < 0).all()  # descent raises both bits towards (+, +)
    p_flip = pre.clone().requires_grad_()
    G.nearest_neighbour_loss(codec, x, p_flip, None, 1, torch.Generator()).backward()
    assert (p_flip.grad > 0).all() and torch.isfinite(flips)  # one flip at a time: keep (-, -)


@pytest.mark.parametrize("kind", ["cae", "dplc"])
def test_the_exhaustive_search_is_the_least_error_code(kind):
    """Against a brute force over the 2^C codes: the CAE's nearest codeword, a private-noise
    codec's least mean error over the draws (the mean and spread over draws sum to it)."""
    import itertools

    cfg = G.GaussianConfig(variances=(1.0, 0.25), rates=(3,), steps=2, generator_steps=2, hidden=8,
                           batch_size=16, threads=1)  # fmt: skip
    source = G.Source(cfg.variances, 0)
    codec = G.GaussianCodec(cfg, 3, G.train_generator(cfg, source) if kind == "dplc" else None)
    x = source.sample(16)
    got = G._nearest_codes(codec, x, 3, 2, torch.Generator().manual_seed(2))
    codes = torch.tensor(list(itertools.product([-0.5, 0.5], repeat=3)))
    with torch.no_grad():
        if kind == "dplc":
            out = codec.decode(codes.repeat(2, 1), codec.draw(16, torch.Generator().manual_seed(2))).view(2, 8, -1)
            err = (out.unsqueeze(1) - x.view(1, 16, 1, -1)).pow(2).sum(-1).mean(0)
        else:
            err = torch.stack([(codec.decode(v.expand(16, 3)) - x).pow(2).sum(1) for v in codes], 1)
    assert torch.equal(got, codes[err.argmin(1)])


@pytest.mark.parametrize("shared", ["encoder", "dither"])
def test_a_shared_codec_compares_flips_under_either_search(shared):
    """A shared codec's candidates decode under each row's own noise (n·2^C decodes): its
    term is the one-bit one whatever ``search`` says, and the exhaustive helper refuses it."""
    cfg = G.GaussianConfig(variances=(1.0, 0.25), rates=(2,), steps=2, generator_steps=2, hidden=8,
                           batch_size=16, threads=1)  # fmt: skip
    source = G.Source(cfg.variances, 0)
    codec = G.GaussianCodec(cfg, 2, G.train_generator(cfg, source), shared)
    x = source.sample(16)
    s = codec.draw(16, torch.Generator().manual_seed(1))
    pre = codec.pre_quantized(x, s).detach()
    losses = [G.nearest_neighbour_loss(codec, x, pre, s, 2, torch.Generator().manual_seed(2), search=m)
              for m in ("flips", "all")]  # fmt: skip
    assert torch.equal(losses[0], losses[1])
    with pytest.raises(ValueError, match="compares one-bit flips"):
        G._nearest_codes(codec, x, 2, 2, torch.Generator())


def test_all_codes_are_every_code_in_product_order():
    import itertools

    from dplc.quantize import centers

    for levels, c in ((2, 0), (2, 1), (2, 3), (3, 2)):
        want = list(itertools.product(centers(levels).tolist(), repeat=c))
        assert G.all_codes(c, levels).tolist() == [list(v) for v in want]


def test_the_exhaustive_search_is_bounded():
    with pytest.raises(ValueError, match="lr and cae_lr must be > 0"):
        G.GaussianConfig(cae_lr=0.0)
    with pytest.raises(ValueError, match="nearest_all must be a subset of"):
        G.GaussianConfig(nearest_all=("dplc_shared",))
    with pytest.raises(ValueError, match="C must be <= 12"):
        G.GaussianConfig(rates=(0, 16), nearest_weight=1.0, nearest_all=("cae",))
    assert G.GaussianConfig.from_dict({"nearest_all": ["cae"]}).nearest_all == ("cae",)


def test_the_nearest_neighbour_term_needs_binary_codes():
    with pytest.raises(ValueError, match="levels must be 2"):
        G.GaussianConfig(levels=4, nearest_weight=1.0)


@pytest.mark.parametrize("shared", [None, "encoder", "dither"])
def test_the_nearest_neighbour_term_trains_dplc_with_private_and_shared_noise(shared):
    """Private noise scores each candidate by its expected error over fresh draws, shared noise
    by the error under the step's own draw; both train E (the decoder gets no gradient from it)."""
    cfg = G.GaussianConfig(variances=(1.0, 0.25), rates=(2,), steps=4, generator_steps=4, hidden=8,
                           batch_size=32, threads=1, nearest_weight=1.0, nearest_draws=3)  # fmt: skip
    source = G.Source(cfg.variances, 0)
    codec = G.GaussianCodec(cfg, 2, G.train_generator(cfg, source), shared)
    x = source.sample(32)
    s = codec.draw(32, torch.Generator().manual_seed(1))
    pre = codec.pre_quantized(x, s)
    loss = G.nearest_neighbour_loss(codec, x, pre, s, cfg.nearest_draws, torch.Generator().manual_seed(2))
    loss.backward()
    assert torch.isfinite(loss) and codec.encoder[0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in codec.decoder.parameters())
    trained, _ = G.train_codec(cfg, 2, source, codec.generator, shared)
    assert G.evaluate(trained, source.sample(256), cfg.variances, 0)["mse"] < float("inf")


def test_the_nearest_neighbour_term_brings_the_cae_to_lloyds_bound():
    """At 2 bits the straight-through gradient alone leaves the CAE's cells ~18% above D_K (1.18-1.20
    over seeds 0-2 in this configuration); with the bitwise condition they reach it (1.00-1.02)."""
    from dplc.gaussian_bounds import lloyd_distortion

    over = []
    for weight in (0.0, 1.0):
        cfg = G.GaussianConfig(variances=(2.0, 1.0, 0.5, 0.25), rates=(2,), steps=1000, hidden=64,
                               batch_size=256, threads=1, nearest_weight=weight)  # fmt: skip
        codec, _ = G.train_codec(cfg, 2, G.Source(cfg.variances, 0))
        mse = G.evaluate(codec, G.Source(cfg.variances, 100).sample(20_000), cfg.variances, 0)["mse"]
        over.append(mse / lloyd_distortion(cfg.variances, 2, n=20_000))
    assert over[0] > 1.12 and over[1] < 1.05, over


def test_polar_form_decodes_exact_gaussians_through_an_exact_encoder():
    """``polar_figures`` with E = G* = identity on a unit-variance source: the latents are
    exactly N(0, I), so the decodes are too (each component's variance within 3% at 20,000
    vectors, the 4-sigma spread is 4%), below 2·D_K, and a wrong dither keeps the law at a
    higher error. Power: where a pair's radius has several symbols (3 bits on a heavy pair),
    halving the encoder's output breaks the law, which the exact encoder keeps (at 2 bits on
    equal weights one radius symbol leaves the decode's law independent of the input's: the code
    sends only the angle's cell)."""
    cfg = G.GaussianConfig(variances=(1.0, 1.0, 1.0, 1.0), rates=(2,), test_size=20_000, realism_holdout=500,
                           moment_holdout=20_000)  # fmt: skip
    eye = torch.eye(4, dtype=torch.float64)
    m = S.polar_figures(cfg, 2, torch.nn.Identity(), torch.nn.Identity(), eye, (1.0, 1.0, 1.0, 1.0))
    d_k = S.lloyd_distortion(cfg.variances, cfg.bits(2), seed=5)
    assert max(map(abs, m["variance_error"])) < 0.03 and max(map(abs, m["variance_error_wrong_noise"])) < 0.03
    assert m["mse"] < 2 * d_k < m["mse_wrong_noise"] and m["lambda_rate"] is None
    assert abs(m["holdout_mmd_sd"]) < 4 and abs(m["holdout_moment_sd"]) < 4
    heavy, cfg3 = (16.0, 16.0, 1.0, 1.0), replace(cfg, rates=(3,))
    exact = S.polar_figures(cfg3, 3, torch.nn.Identity(), torch.nn.Identity(), eye, heavy)
    shrunk = S.polar_figures(cfg3, 3, lambda x: 0.5 * x, torch.nn.Identity(), eye, heavy)
    assert exact["layout"][0] == "Pair(components=(0, 1), rings=(3, 5))"  # two radius symbols
    assert max(map(abs, exact["variance_error"])) < 0.03 and abs(exact["holdout_moment_sd"]) < 4
    assert max(map(abs, shrunk["variance_error"])) > 0.1 and shrunk["holdout_moment_sd"] > 10


def test_polar_form_is_coded_not_trained_and_reported_as_the_shared_codec():
    kw = dict(variances=(1.0, 0.25), rates=(0, 2), steps=30, generator_steps=60, hidden=16, batch_size=64,
              test_size=2_000, threads=1, realism_holdout=200, dual_every=10, continue_steps=10)  # fmt: skip
    res = S.run(G.GaussianConfig(**kw, shared="polar", starts=("scratch", "private")), log=lambda *_: None)
    learned = S.run(G.GaussianConfig(**kw, shared="encoder", codecs=("cae", "dplc")), log=lambda *_: None)
    assert res["mse_dplc"] == learned["mse_dplc"] and res["mse_cae"] == learned["mse_cae"]  # untouched
    assert res["lambda_rate_dplc_shared"] == [None, None] and res["start_dplc_shared"] == ["scratch", "scratch"]
    assert res["mse_dplc_shared"][1] < res["mse_dplc_shared"][0]  # two bits help
    assert len(res["gaussian_shared_over_2dk"]) == 2
