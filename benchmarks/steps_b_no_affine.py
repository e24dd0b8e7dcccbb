"""``benchmarks/steps.py`` with B's final BatchNorm1d built without its learnable scale and shift.

    python benchmarks/steps_b_no_affine.py --rates 4 --steps 1000 --methods dplc --tag affine0 \\
        --per-rate '{"method": {}}'

An experiment, not a setting: :class:`dplc.nets.StochasticMap` is patched in this process
only, so the codecs it writes under ``runs/steps/<tag>/`` load only through it. It asks whether
the jitter of that layer's affine parameters (γ − 1 about 1% r.m.s. in trained codecs) is what
keeps DPLC's held-out latent check above ε (docs/realism.md, "A fixed λ at 64 bits, and why the
dual climbs"); the row it appends to ``reports/bench/steps.jsonl`` carries only the tag.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import nets  # noqa: E402

_init = nets.StochasticMap.__init__


def _init_without_affine(self: nets.StochasticMap, net) -> None:
    _init(self, net)
    self.body[-1] = torch.nn.BatchNorm1d(net.latent_dim, affine=False)


if __name__ == "__main__":
    nets.StochasticMap.__init__ = _init_without_affine
    sys.argv = [str(ROOT / "benchmarks" / "steps.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
