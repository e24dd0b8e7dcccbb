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
    assert any("starts" in s for s in base.per_rate.values())  # and a rate whose starts break a learned form
    arms = shared_noise.arms(base)
    for cfg in arms.values():
        assert all("starts" not in s for s in cfg.per_rate.values())
        assert {c: {k: v for k, v in s.items() if k != "starts"} for c, s in base.per_rate.items()} == {
            c: cfg.per_rate.get(c, {}) for c in base.per_rate}  # the rest of each rate's settings stays
    assert arms["encoder"].shared == "encoder" and arms["encoder"].codecs == ("cae", "dplc", "dplc_shared")
    assert arms["dither"].shared == "dither" and arms["dither"].codecs == ("dplc_shared",)
    assert arms["dither"].starts == ("scratch",)
    assert arms["encoder"].starts == base.starts
