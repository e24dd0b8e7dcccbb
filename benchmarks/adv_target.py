"""wpp's generator adversarial term: the critic's mixture z̃ against the paper's f(G(sg E(x))).

    python benchmarks/adv_target.py [--steps 3000] [--targets mixture encoded]

Trains the Wasserstein++ G* of the current params (``generator.wpp``) once per
``adv_target``, with the same seed, steps and data, in this process (no Ray), and scores each
by sFID against the test split with the domain feature network (``runs/featnet``), like the
evaluate stage. Writes ``reports/bench/adv_target.json`` with the sFID, the final losses, the
seconds and the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, metrics  # noqa: E402
from dplc.config import ADV_TARGETS  # noqa: E402
from dplc.methods import generator_of  # noqa: E402
from dplc.train import NullCallback, fit, setup  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "adv_target.json"


class _Last(NullCallback):
    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics = metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="default: generator.wpp.steps")
    ap.add_argument("--targets", nargs="+", default=list(ADV_TARGETS), choices=ADV_TARGETS)
    ap.add_argument("--test-images", type=int, default=10000)
    args = ap.parse_args()
    params = P.load()
    base = P.train_config(params, "wpp")
    steps = args.steps or base.loop.steps
    images = data.to_tensor(
        data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit")).images,
        base.net.image_size,
    )
    test = data.to_tensor(data.read_split(L.prepared_dir(), "test", limit=args.test_images).images, base.net.image_size)
    featnet = L.featnet_weights()
    out: dict = {"steps": steps, "results": {}}
    for target in args.targets:
        cfg = dataclasses.replace(
            base,
            method=dataclasses.replace(base.method, adv_target=target),
            loop=dataclasses.replace(base.loop, steps=steps, label=f"wpp adv_target={target}"),
        )
        t0 = time.perf_counter()
        last = _Last()
        method, batches = setup(cfg, images)
        fit(cfg, method, batches, None, [last])
        g = generator_of(method).eval()
        with torch.no_grad():
            samples = g(torch.randn(test.shape[0], cfg.net.latent_dim, generator=torch.Generator().manual_seed(1)))
        sfid = metrics.fid_kid(test, data.to_uint8(samples), featnet)["fid_featnet"]
        out["results"][target] = {"sfid_featnet": sfid, "seconds": round(time.perf_counter() - t0, 1), "final": last.metrics}
        print(f"adv_target={target}: sFID {sfid:.3f}", flush=True)
    if len(out["results"]) == 2:
        a, b = (out["results"][t]["sfid_featnet"] for t in ADV_TARGETS)
        out["better"] = ADV_TARGETS[0] if a <= b else ADV_TARGETS[1]
        out["sfid_relative_difference"] = abs(a - b) / max(a, b)
    out["environment"] = environment.describe()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "environment"}, indent=2))


if __name__ == "__main__":
    main()
