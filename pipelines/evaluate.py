"""DVC stage `evaluate`: every trained codec at one rate, or the classical codecs, on the test split.

    python -m pipelines.evaluate --rate 4        # -> runs/eval/c4.json
    python -m pipelines.evaluate --classical     # -> runs/eval/classical.json

The numbers come from :func:`dplc.evaluation.evaluate_codec` and :func:`dplc.classical.evaluate_classical`,
the same library code a user calls.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dplc import data, evaluation
from dplc.bundle import CodecBundle
from pipelines import layout as L
from pipelines import params as P
from pipelines import stage_timing, tracking


def _featnet() -> Path:
    return L.featnet_weights()


def _test_images(params: dict):
    n = int(params["evaluate"]["test_images"])
    return data.read_split(L.prepared_dir(), "test", limit=n).images


def evaluate_rate(params: dict, rate: int, timing: stage_timing.Timing | None = None) -> dict:
    """Every learned codec at code size ``rate``. The sample FID is a property of G* alone, the
    same at every rate, so it is computed once, with the rate-0 codec (whose decodes are G*'s
    samples). Each codec's seconds go to ``timing``, not into the result."""
    timing = timing or stage_timing.Timing()
    test = _test_images(params)
    results: dict[str, dict] = {}
    for codec_dir in L.codec_dirs(rate):
        name = codec_dir.parent.parent.name
        with timing.phase(name):
            results[name] = _evaluate_codec(params, codec_dir, name, rate, test)
        print(name, rate, {k: round(v, 4) for k, v in results[name].items()})
    inception = params["featnet"].get("inception_weights")
    return {
        "code_channels": rate,
        "features": "featnet" + ("+inception" if inception else ""),
        "codecs": results,
    }


def _evaluate_codec(params: dict, codec_dir: Path, name: str, rate: int, test) -> dict:
    """One trained codec's metrics (:func:`dplc.evaluation.evaluate_codec`), with dplc's final
    Lagrange multiplier from the train stage."""
    e = params["evaluate"]
    bundle = CodecBundle.load(codec_dir, name=name)
    m = evaluation.evaluate_codec(
        bundle, test, _featnet(),
        pv_batch=int(e["pv_batch"]), pv_repeats=int(e["pv_repeats"]),
        inception_path=params["featnet"].get("inception_weights"),
        sample_fid=name.startswith("dplc") and rate == 0,
    )  # fmt: skip
    if "lambda_rate" in bundle.codec.meta:
        m["lambda_rate"] = float(bundle.codec.meta["lambda_rate"])
    return m


def main() -> None:
    timing = stage_timing.Timing()
    ap = argparse.ArgumentParser(description="evaluate codecs on the test split")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--rate", type=int, help="code channels C of the learned codecs to evaluate")
    g.add_argument("--classical", action="store_true", help="the classical codec baselines")
    args = ap.parse_args()
    params = P.load()
    tracking.check_store(params)
    out_dir = L.eval_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.classical:
        from dplc import classical

        e = params["evaluate"]
        with timing.phase("classical"):
            result = {
                "features": "featnet",
                "codecs": classical.evaluate_classical(
                    _test_images(params), _featnet(), e["classical"], params["data"]["image_size"],
                    workers=int(e.get("workers", 1)),
                ),
            }
        out, stage = L.classical_file(), L.eval_run_name("classical")
    else:
        result = evaluate_rate(params, args.rate, timing)
        out, stage = L.eval_file(args.rate), L.eval_run_name(args.rate)
    out.write_text(json.dumps(result, indent=2))
    with tracking.stage_run(params, "evaluate", run_name=stage) as run:
        run.log_params({"evaluate": params["evaluate"]})
        for name, m in result["codecs"].items():
            if isinstance(m, dict) and all(isinstance(v, (int, float)) for v in m.values()):
                run.log_metrics({f"{name}.{k}": v for k, v in m.items()})
            elif isinstance(m, list):
                for i, point in enumerate(m):
                    run.log_metrics(
                        {f"{name}.{k}": v for k, v in point.items() if isinstance(v, (int, float))},
                        step=i,
                    )
        run.log_artifact(out)
        if not args.classical and params["mlflow"].get("register", True):
            tag_registered_versions(params, args.rate, result["codecs"], run.run_id)
    stage_timing.write(stage, timing.summary())


HEADLINE = ("mse", "psnr", "pv", "bpp_file", "bits_payload")
"""The evaluation figures each registered version carries as ``eval.*`` tags (and every FID)."""


def tag_registered_versions(params: dict, rate: int, codecs: dict, run_id: str) -> None:
    """Tag the registered version of each codec at this rate (alias ``c<rate>``) with its
    headline metrics, so the registry tells what a version scores."""
    from dplc import registry

    for name, m in codecs.items():
        model = P.registered_name(params, name)
        version = registry.version_by_alias(model, f"c{rate}")
        if version is None:
            continue
        keys = [k for k in m if k in HEADLINE or "fid" in k or k == "lambda_rate"]
        tags = {f"eval.{k}": f"{m[k]:.4g}" for k in keys} | {"eval.run_id": run_id}
        registry.tag_version(model, version, tags)


if __name__ == "__main__":
    main()
