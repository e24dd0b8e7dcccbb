import pytest

from dplc.config import (
    ConfigError,
    LoopConfig,
    MethodConfig,
    NetConfig,
    TrainConfig,
    from_dict,
    method_defaults,
    to_dict,
)


def test_round_trip_through_dict():
    cfg = TrainConfig(
        NetConfig(code_channels=4), MethodConfig(**method_defaults("dplc")), LoopConfig(steps=5)
    )
    back = from_dict(TrainConfig, to_dict(cfg))
    assert back == cfg


def test_types_are_checked():
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(NetConfig, {"width": "32"})
    with pytest.raises(ConfigError, match="expected a number"):
        from_dict(MethodConfig, {"lr": "fast"})
    with pytest.raises(ConfigError, match="expected 2 values"):
        from_dict(MethodConfig, {"betas": [0.5]})
    assert from_dict(MethodConfig, {"lr": 1}).lr == 1.0


def test_ranges_are_checked():
    with pytest.raises(ConfigError, match="image_size"):
        NetConfig(image_size=48)
    with pytest.raises(ConfigError, match="precision"):
        LoopConfig(precision="fp16")
    with pytest.raises(ConfigError, match="lr_decay_at"):
        MethodConfig(lr_decay_at=(1.5,))
    with pytest.raises(ConfigError, match="unknown method"):
        method_defaults("vae")
