import copy
import dataclasses

import pytest
import yaml

from dplc import loss_scale
from dplc.config import TrainConfig
from pipelines import params as P
from pipelines import profile


@pytest.mark.parametrize("name", profile.PROFILES)
def test_every_profile_composes_into_valid_train_configs(tmp_path, name):
    out = profile.compose(name, output=tmp_path / "params.yaml")
    params = yaml.safe_load(out.read_text())
    assert params["profile_name"] == name
    for method in params["generators"]:
        cfg = P.train_config(params, method)
        assert isinstance(cfg, TrainConfig) and cfg.net.code_channels == 0
    for c in params["ladder"]:
        for method in ("dplc", "gc", "cae"):
            cfg = P.train_config(params, method, c, best={})
            assert cfg.net.code_channels == c
            at_rate = (params["train"][method].get("per_rate") or {}).get(c) or {}
            assert cfg.net.noise == (method != "cae" and at_rate.get("noise", True))
    # dplc_shared trains at positive rates of the ladder, with dplc's settings (and its per-rate
    # ones unless its own section replaces them)
    assert params["shared_ladder"] and set(params["shared_ladder"]) <= set(params["ladder"]) - {0}
    like = copy.deepcopy(params)
    shared_section = params["train"].get("dplc_shared") or {}
    if "per_rate" in shared_section:
        like["train"]["dplc"]["per_rate"] = shared_section["per_rate"]
    for c in params["shared_ladder"]:
        shared = P.train_config(params, "dplc_shared", c, best={}, generator="wpp")
        dplc = P.train_config(like, "dplc", c, best={}, generator="wpp")
        own = params["train"].get("dplc_shared", {}).get("method", {})  # the keys it replaces
        assert shared.method == dataclasses.replace(dplc.method, name="dplc_shared", **own)
        assert (shared.loop.steps, shared.loop.seed, shared.net) == (dplc.loop.steps, dplc.loop.seed, dplc.net)


def test_committed_params_is_the_composed_default(tmp_path):
    composed = yaml.safe_load(profile.compose("default", output=tmp_path / "p.yaml").read_text())
    assert yaml.safe_load(P.PARAMS.read_text()) == composed


def test_overrides_and_unknown_profile(tmp_path):
    out = profile.compose("quick", ["tune.num_samples=3"], output=tmp_path / "p.yaml")
    assert yaml.safe_load(out.read_text())["tune"]["num_samples"] == 3
    with pytest.raises(SystemExit, match="unknown profile"):
        profile.compose("nope", output=tmp_path / "x.yaml")


def test_tuned_values_reach_every_rate_and_lambda_rate_is_not_rescaled():
    best = {"lr": 0.002, "rate": 4, "score": 0.1, "val_mmd_sd": 0.5, "method": "dplc"}
    params = P.load()
    for c in (1, 4, 16):
        cfg = P.train_config(params, "dplc", c, best=best)
        assert cfg.method.lr == 0.002
        assert cfg.method.lambda_rate == params["train"]["dplc"]["method"]["lambda_rate"]
    assert P.tuned_overrides(best) == {"lr": 0.002}


def test_ray_address_from_environment(monkeypatch):
    params = P.load()
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert P.ray_params(params).address == "10.0.0.1:6379"


def test_dplc_steps_per_generator_and_nothing_to_learn_at_rate0():
    params = P.load()
    params["train"]["dplc"]["steps"] = 1200
    params["train"]["dplc"]["steps_by_generator"] = {"wae": 600}
    params["train"]["dplc"]["per_rate"] = None
    assert P.train_config(params, "dplc", 4, best={}, generator="wpp").loop.steps == 1200
    assert P.train_config(params, "dplc", 4, best={}, generator="wae").loop.steps == 600
    # C = 0: dplc decodes G*(z), cae the mean; gc is a pure GAN there and trains in full
    assert P.train_config(params, "dplc", 0, best={}, generator="wpp").loop.steps == 1
    assert P.train_config(params, "cae", 0, best={}).loop.steps == 100
    assert P.train_config(params, "gc", 0, best={}).loop.steps == params["train"]["gc"]["steps"]


def test_per_rate_settings_apply_at_their_rate_only_and_are_checked():
    """train.dplc.per_rate.<C> lays steps, noise and MethodConfig keys over the section at rate C
    alone (dplc_shared inherits them unless its own section says otherwise); a rate off the
    ladder or an unknown key is refused by name."""
    params = P.load()
    d = params["train"]["dplc"]
    d["per_rate"] = {16: {"steps": 2000, "noise": False, "method": {"free_fraction": 0.5, "realism_images": 1024,
                                                                      "realism_draws": 1}}}  # fmt: skip
    at = P.train_config(params, "dplc", 16, best={}, generator="wpp")
    assert at.loop.steps == 2000 and not at.net.noise
    assert at.method.free_fraction == 0.5 and at.method.realism_images == 1024
    assert at.method.batch_size == d["method"]["batch_size"]  # the section's other keys stay
    other = P.train_config(params, "dplc", 4, best={}, generator="wpp")
    assert other.loop.steps == d["steps"] and other.net.noise and other.method.free_fraction == 0.0
    params["train"]["dplc_shared"] = {"per_rate": None}
    assert P.train_config(params, "dplc_shared", 16, best={}, generator="wpp").net.noise
    d["per_rate"] = {3: {"steps": 10}}
    with pytest.raises(ValueError, match=r"train\.dplc\.per_rate\.3: 3 is not a positive rate of the ladder"):
        P.train_config(params, "dplc", 4, best={})
    d["per_rate"] = {16: {"lr": 1e-3}}
    with pytest.raises(ValueError, match=r"unknown settings \['lr'\]"):
        P.train_config(params, "dplc", 4, best={})


def test_only_the_default_profile_writes_the_committed_reports(tmp_path):
    for name in profile.PROFILES:
        params = yaml.safe_load(profile.compose(name, output=tmp_path / f"{name}.yaml").read_text())
        expected = "reports" if name == "default" else f"runs/reports/{name}"
        assert params["report_dir"] == expected, name


def test_registry_vocabulary_describes_every_codec():
    params = P.load()
    assert P.codec_name("dplc", "wpp") == "dplc_wpp" and P.codec_name("cae", None) == "cae"
    assert P.registered_name(params, "gc") == f"{params['data']['source']}-gc"
    for method, generator in (("dplc", "wpp"), ("gc", None), ("cae", None)):
        text, tags = P.model_description(params, method, generator)
        assert f"Dataset: {params['data']['source']}" in text and "{" not in text
        assert tags["method"] == method and tags["fid_features"] == P.fid_features(params)
    net = P.net_config(params, code_channels=4)
    tags = P.version_tags(net, {"lambda_rate": 7.4321}, "ab" * 32, "run1", "cd" * 32)
    assert tags["bits_per_image"] == "64" and tags["lambda_rate"] == "7.432"
    assert "lambda_rate" not in P.version_tags(net, {}, "ab" * 32, "run1", None)


@pytest.mark.parametrize("name", ["celeba64", "lsun64"])
def test_64px_profiles_derive_their_adversarial_weights(tmp_path, name):
    """λ_adv from the authors' per-pixel-penalty weight, λ_gan from the default's at the same
    balance (dplc.loss_scale, docs/scale.md); a copied 2.5e-5 fails this."""
    params = yaml.safe_load(profile.compose(name, output=tmp_path / "p.yaml").read_text())
    default = yaml.safe_load(profile.compose("default", output=tmp_path / "d.yaml").read_text())
    d = params["data"]
    shape = (d["channels"], d["image_size"], d["image_size"])
    want_adv = loss_scale.whole_image_lambda_adv(2.5e-5, d["image_size"], d["image_size"])
    assert params["generator"]["wpp"]["method"]["lambda_adv"] == pytest.approx(want_adv, rel=0.01)
    dd = default["data"]
    lam32 = default["train"]["gc"]["method"]["lambda_gan"]
    want_gan = loss_scale.same_balance_mse(lam32, (dd["channels"], dd["image_size"], dd["image_size"]), shape)
    assert params["train"]["gc"]["method"]["lambda_gan"] == pytest.approx(want_gan, rel=0.01)


@pytest.mark.parametrize("method, generator", [("dplc", "wpp"), ("dplc_shared", "wpp"), ("dplc", "wgan_gp"), ("gc", None), ("cae", None)])
def test_a_codec_name_parses_back_to_its_method_and_generator(method, generator):
    assert P.parse_codec_name(P.codec_name(method, generator)) == (method, generator)
