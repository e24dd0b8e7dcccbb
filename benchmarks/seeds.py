"""Seeds and spread: the per-rate DPLC and CAE codecs at several seeds on one fixed G*.

    python benchmarks/seeds.py [--rates 1 16] [--seeds 0 1 2] [--test-images 10000]

Not part of the default profile (it trains 2 x len(rates) x len(seeds) codecs). For every seed
and rate it trains ``dplc`` (into the finished default G*, ``runs/generator/wpp/codec``, with
the tuned settings of ``runs/tune/best.yaml``) and ``cae`` exactly as the train stage configures
them, only with ``seed`` replaced, in this process (no Ray: the numbers are the library's), then
evaluates both on the test split with :func:`dplc.evaluation.evaluate_codec`. Writes
``reports/bench/seeds.json``: per rate the per-seed figures and mean ± s.d. of MSE_DPLC,
MSE_CAE, their ratio, rFID, PV, the latent MMD (null s.d.) and the final λ_rate; and a
checkpoint per finished (rate, seed, codec) in ``runs/seeds/`` so an interrupted run resumes.

    python benchmarks/seeds.py --rates 64 --seeds 0 1 --stage-seed --merge

``--stage-seed`` counts the train stage's own codecs (``runs/train/``, trained with the stage's
seed) as one more seed instead of training them again; ``--merge`` keeps the rates of the
existing ``seeds.json`` that this run does not train. Each rate's entry names its seeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, entropy, evaluation  # noqa: E402
from dplc.bundle import CodecBundle, fit_entropy_model  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.config import TrainConfig  # noqa: E402
from dplc.method import Method  # noqa: E402
from dplc.method_specs import BY_NAME  # noqa: E402
from dplc.rate_methods import DPLC  # noqa: E402
from dplc.train import NullCallback, export_codec, fit, setup  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "seeds.json"
WORK = L.RUNS / "seeds"
HISTORY = "history.jsonl"
SETTINGS = "settings.json"  # the training settings of a checkpointed codec (check_settings)
FIELDS = ("mse", "rfid_featnet", "pv", "latent_mmd_sd", "lambda_rate", "mse_mean_decode")
GENERATOR = L.HEADLINE_GENERATOR  # the G* every seed's per-rate codec decodes into (the default ladder's)


def generator_of(method: str) -> str | None:
    """The G* ``method`` decodes into (:data:`GENERATOR`), or None for a codec with its own decoder."""
    return GENERATOR if BY_NAME[method].into_generator else None


def train_one(params: dict, method: str, rate: int, seed: int | None, images: torch.Tensor,
              steps: int | None = None, work: Path = WORK) -> Path:  # fmt: skip
    """Train ``method`` at ``rate`` with ``seed`` and ``steps`` (None: the train stage's; its
    config otherwise); its codec dir, under ``work`` (named with the steps when they are given;
    a finished one is reused when the settings it was trained with, recorded beside it, are
    these: :func:`check_settings`)."""
    cfg = P.train_config(params, method, rate, generator=generator_of(method))
    out = run_dir(params, method, rate, seed, steps, work)
    seed = cfg.loop.seed if seed is None else seed
    steps = cfg.loop.steps if steps is None else steps
    cfg = dataclasses.replace(cfg, loop=dataclasses.replace(
        cfg.loop, seed=seed, steps=steps, label=f"{method} C={rate} seed {seed} steps {steps}"))  # fmt: skip
    if is_exported(out / "codec"):
        check_settings(out, cfg)
        if is_trained(out / "codec"):
            return out / "codec"
        return fit_entropy(Codec.load(out / "codec"), images, out / "codec")  # its entropy model never saved
    out.mkdir(parents=True, exist_ok=True)
    (out / SETTINGS).write_text(json.dumps(settings_record(cfg), indent=1, sort_keys=True))
    generator = Codec.load(L.generator_codec(GENERATOR)).generator if generator_of(method) else None
    trained, batches = setup(cfg, images, generator)
    return fit_and_save(cfg, trained, batches, images, out)


def fit_and_save(cfg: TrainConfig, trained: Method, batches: torch.Tensor, images: torch.Tensor,
                 out: Path) -> Path:  # fmt: skip
    """Train the method of :func:`dplc.train.setup` with its history in ``out`` (:class:`History`),
    record DPLC's final λ_rate in the codec's meta, and save the codec with its entropy model
    under ``out / "codec"``; that folder."""
    (out / HISTORY).unlink(missing_ok=True)
    fit(cfg, trained, batches, callbacks=[History(out / HISTORY)])
    if isinstance(trained, DPLC):
        trained.codec.meta["lambda_rate"] = trained.dual.lam
    return save_codec(trained, images, out / "codec")


class History(NullCallback):
    """Appends each log window's averaged metrics, with its step, to a JSON-lines file (the
    dual's trajectory: ``holdout_mmd_sd`` and ``lambda_rate`` at every check)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")


def settings_record(cfg: TrainConfig) -> dict:
    """The training settings that decide a codec, as JSON values (the log label left out)."""
    record = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    record["loop"].pop("label", None)
    return record


def check_settings(out: Path, cfg: TrainConfig) -> None:
    """Refuse to reuse the codec in ``out`` when the settings recorded beside it
    (:data:`SETTINGS`) differ from ``cfg``'s, naming the keys that differ; a codec from before
    the record is reused with a warning."""
    path = out / SETTINGS
    if not path.is_file():
        print(f"warning: {out} records no settings; reusing its codec as trained before", flush=True)
        return
    old, new = json.loads(path.read_text()), settings_record(cfg)
    if old != new:
        keys = sorted(_differing(old, new))
        raise SystemExit(f"{out} was trained with other settings ({', '.join(keys)}); "
                         "move it away to train these")  # fmt: skip


def _differing(a: object, b: object, prefix: str = "") -> list[str]:
    """The dotted keys where nested dicts ``a`` and ``b`` differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [k for key in sorted({*a, *b}) for k in _differing(a.get(key), b.get(key), f"{prefix}{key}.")]
    return [] if a == b else [prefix.rstrip(".")]


def run_dir(params: dict, method: str, rate: int, seed: int | None, steps: int | None,
            work: Path = WORK) -> Path:  # fmt: skip
    """Where :func:`train_one` keeps ``method`` at ``rate`` (seed None: the train stage's)."""
    seed = P.train_config(params, method, rate).loop.seed if seed is None else seed
    return work / f"{method}-c{rate}-s{seed}" if steps is None else work / f"{method}-c{rate}-s{seed}-n{steps}"


def is_exported(codec_dir: Path) -> bool:
    """Whether ``codec_dir`` holds a trained codec's weights (its entropy model may be missing)."""
    return (codec_dir / "codec.json").is_file()


def is_trained(codec_dir: Path) -> bool:
    """Whether ``codec_dir`` holds a finished codec, weights and entropy model (:func:`train_one`
    then reuses it)."""
    return is_exported(codec_dir) and (codec_dir / entropy.ENTROPY_FILE).is_file()


def save_codec(trained: Method, images: torch.Tensor, codec_dir: Path) -> Path:
    """Export a trained per-rate method's codec with its entropy model (:func:`fit_entropy`); its
    folder."""
    return fit_entropy(export_codec(trained, codec_dir), images, codec_dir)


def fit_entropy(codec: Codec, images: torch.Tensor, codec_dir: Path) -> Path:
    """The entropy model of ``codec`` fitted as the train stage does
    (:func:`dplc.bundle.fit_entropy_model`), saved in ``codec_dir``; that folder."""
    fit_entropy_model(codec, images).save(codec_dir)
    return codec_dir


def evaluate(codec_dir: Path, test, params: dict) -> dict:
    """The evaluate stage's figures of the codec in ``codec_dir`` on the ``test`` images."""
    e = params["evaluate"]
    return evaluation.evaluate_codec(
        CodecBundle.load(codec_dir, name="eval"), test, L.featnet_weights(),
        pv_batch=int(e["pv_batch"]), pv_repeats=int(e["pv_repeats"]),
    )  # fmt: skip


def scored(codec_dir: Path, test, params: dict) -> dict:
    """:func:`evaluate`'s figures of the codec in ``codec_dir`` with its final λ_rate (NaN for a
    codec trained without the dual)."""
    m = evaluate(codec_dir, test, params)
    m["lambda_rate"] = float(Codec.load(codec_dir).meta.get("lambda_rate", float("nan")))
    return m


def stage_codec(params: dict, method: str, rate: int) -> Path:
    """The codec the train stage exported for ``method`` at ``rate`` (its own seed); refused when
    that stage has not run."""
    codec_dir = L.codec_dir(P.codec_name(method, generator_of(method)), rate)
    if not is_trained(codec_dir):
        raise SystemExit(f"{codec_dir} holds no trained codec: run the train stage first")
    return codec_dir


def spread(values: list[float]) -> dict[str, float]:
    """Mean and sample s.d. (0 for one value)."""
    return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[1, 16], help="code channels C")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("--stage-seed", action="store_true",
                    help="count the train stage's own codecs (runs/train/, the stage's seed) as one more seed")
    ap.add_argument("--merge", action="store_true",
                    help="keep the rates of an existing reports/bench/seeds.json that this run does not train")
    args = ap.parse_args()
    if len(args.seeds) + args.stage_seed < 2:
        raise SystemExit("a spread needs at least two seeds")
    params = P.load()
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    split = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit"))
    images = data.to_tensor(split.images, int(params["data"]["image_size"]))
    test = data.read_split(L.prepared_dir(), "test", limit=args.test_images).images
    t0 = time.perf_counter()
    result: dict = {"rates": args.rates, "seeds": args.seeds, "per_rate": {}}
    if args.merge and OUT.is_file():
        kept = json.loads(OUT.read_text())
        old_seeds = kept.get("seeds")
        result["per_rate"] = {r: {"seeds": old_seeds, **v} for r, v in kept["per_rate"].items()
                              if int(r) not in args.rates}  # fmt: skip
        result["rates"] = sorted({*args.rates, *(int(r) for r in result["per_rate"])})
    for rate in args.rates:
        rows: dict[str, dict[str, list[float]]] = {"dplc": {}, "cae": {}}
        stage_seed = P.train_config(params, "dplc", rate).loop.seed
        if args.stage_seed and stage_seed != P.train_config(params, "cae", rate).loop.seed:
            raise SystemExit(f"C={rate}: the DPLC and CAE stages train with different seeds; no one stage seed")
        seeds = [*([stage_seed] if args.stage_seed else []), *args.seeds]
        if len(set(seeds)) != len(seeds):
            raise SystemExit(f"seed {stage_seed} is the stage's own at C={rate}: leave it out of --seeds")
        for seed in seeds:
            for method in ("dplc", "cae"):
                if args.stage_seed and seed == stage_seed:
                    codec_dir = stage_codec(params, method, rate)
                else:
                    codec_dir = train_one(params, method, rate, seed, images)
                m = scored(codec_dir, test, params)
                for k in FIELDS:
                    rows[method].setdefault(k, []).append(float(m.get(k, float("nan"))))
                print(f"C={rate} seed {seed} {method}: MSE {m['mse']:.4f} rFID {m['rfid_featnet']:.3f} "
                      f"PV {m['pv']:.4g} ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
        ratios = [a / b for a, b in zip(rows["dplc"]["mse"], rows["cae"]["mse"], strict=True)]
        result["per_rate"][str(rate)] = {
            "seeds": seeds,
            "bits_per_image": P.net_config(params, rate).bits_per_image,
            "mse_ratio_dplc_cae": {"values": ratios, **spread(ratios)},
            **{f"{k}_{name}": {"values": v, **spread(v)} for name, r in rows.items() for k, v in r.items()
               if not (name == "cae" and k in ("lambda_rate", "latent_mmd_sd"))},
        }  # fmt: skip
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["environment"] = environment.describe()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(json.dumps({r: v["mse_ratio_dplc_cae"] for r, v in result["per_rate"].items()}, indent=2))


if __name__ == "__main__":
    main()
