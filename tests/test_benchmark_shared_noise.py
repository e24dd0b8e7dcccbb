"""benchmarks/shared_noise.py: the two runs it compares are configs the study accepts."""

from __future__ import annotations

from pathlib import Path

import yaml
from _benchmarks import ROOT, benchmark_module

from dplc.gaussian import GaussianConfig

shared_noise = benchmark_module("shared_noise")


def test_both_arms_are_valid_configs_of_the_committed_params():
    """The committed params start DPLC from ``private`` and ``cae`` too; the dither arm trains
    ``dplc_shared`` alone, so it must drop those starts or the study refuses it."""
    base = GaussianConfig.from_dict(yaml.safe_load(Path(ROOT / "params.yaml").read_text())["gaussian"])
    assert set(base.starts) > {"scratch"}  # the case that broke the dither arm
    arms = shared_noise.arms(base)
    assert arms["encoder"].shared == "encoder" and arms["encoder"].codecs == ("cae", "dplc", "dplc_shared")
    assert arms["dither"].shared == "dither" and arms["dither"].codecs == ("dplc_shared",)
    assert arms["dither"].starts == ("scratch",)
    assert arms["encoder"].starts == base.starts
