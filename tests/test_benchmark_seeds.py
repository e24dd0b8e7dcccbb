"""benchmarks/seeds.py reuses a checkpointed codec only when it was trained with the same settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from _benchmarks import benchmark_module

from dplc.config import LoopConfig, MethodConfig, TrainConfig

seeds = benchmark_module("seeds")


def _cfg(**method) -> TrainConfig:
    return TrainConfig(method=MethodConfig(**method), loop=LoopConfig(seed=3, steps=10, label="a"))


def _recorded(tmp_path: Path, cfg: TrainConfig) -> Path:
    (tmp_path / seeds.SETTINGS).write_text(seeds.json.dumps(seeds.settings_record(cfg)))
    return tmp_path


def test_same_settings_are_reused_and_the_label_does_not_count(tmp_path):
    out = _recorded(tmp_path, _cfg())
    relabelled = _cfg()
    relabelled = dataclasses.replace(relabelled, loop=dataclasses.replace(relabelled.loop, label="b"))
    seeds.check_settings(out, relabelled)  # no error


def test_other_settings_are_refused_naming_the_keys(tmp_path):
    out = _recorded(tmp_path, _cfg(settle_fraction=0.333333))
    changed = _cfg(settle_fraction=0.5)
    changed = dataclasses.replace(changed, loop=dataclasses.replace(changed.loop, seed=4))
    with pytest.raises(SystemExit, match=r"other settings \(loop\.seed, method\.settle_fraction\)"):
        seeds.check_settings(out, changed)


def test_a_codec_from_before_the_record_is_reused_with_a_warning(tmp_path, capsys):
    seeds.check_settings(tmp_path, _cfg())
    assert "records no settings" in capsys.readouterr().out
