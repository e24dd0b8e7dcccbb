"""DVC stage `train`: one per-rate codec (dplc on a G*, gc or cae) as a Ray Train job.

    python -m pipelines.train --method dplc --generator wpp --rate 4
    python -m pipelines.train --method cae --rate 16

Writes ``runs/train/<codec>/<C>/`` (the codec folder: codec.json, weights.safetensors and the
entropy model), logs the run to MLflow (params, metrics per step, the codec, a grid of decodes)
and registers the codec as a version of ``<dataset>-<codec>`` with the alias ``c<C>``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from dplc import data
from dplc.bundle import fit_entropy_model
from dplc.codec import Codec
from dplc.config import TrainConfig, to_dict
from dplc.image_io import save_tile
from dplc.method import Method
from dplc.method_specs import BY_NAME, GENERATIVE, PER_RATE
from dplc.pixels import to_pictures
from dplc.rate_methods import DPLC
from dplc.train import NullCallback, export_codec, export_generator, fit, setup
from pipelines import layout as L
from pipelines import params as P
from pipelines import ray_jobs, stage_timing, tracking
from pipelines.stage_timing import Timing, without_times


def _sample_grid(codec: Codec, images: torch.Tensor, path: Path, seeds: int = 4) -> Path:
    """Rows: inputs, then ``seeds`` decodes with different noise (shows what the noise does; a
    shared-noise codec encodes again for each seed's noise)."""
    x = data.to_float(images[:8])
    rows = [x]
    for s in range(seeds):
        u = codec.shared_noise(s, x.shape[0])  # None with private noise: decode draws it from s
        rows.append(codec.decode(codec.encode(x, noise=u), seed=s, noise=u))
    grid = torch.cat(rows)
    return save_tile(to_pictures(grid.numpy(), *grid.shape[-2:]), path, nrow=8)


def run_job(
    params: dict,
    cfg: TrainConfig,
    name: str,
    out_dir: Path,
    generator_dir: Path | None = None,
    run: tracking.StageRun | None = None,
    timing: Timing | None = None,
) -> tuple[Method, dict]:
    """Train ``cfg`` through Ray, restore it on the driver, log history; returns (method, info),
    ``info`` holding only what the inputs determine (the times go to ``timing``).

    A rate-0 dplc or cae codec learns nothing (G*'s sampler, the training mean): it is built
    in this process by the same library loop, without starting a Ray job for it.
    """
    rp = P.ray_params(params)
    timing = timing or Timing()
    workers = rp.num_workers
    t0 = time.perf_counter()
    started: float | None = None  # the Ray job's start: rows before it are a resumed job's past
    if cfg.net.code_channels == 0 and BY_NAME[cfg.method.name].rate0_steps is not None:
        with timing.phase("in_process_fit"):
            method, step, history = _fit_in_process(params, cfg, generator_dir)
        workers = 0
    else:
        started = time.time()
        with timing.phase("ray_job"):
            result = ray_jobs.run_training(
                cfg, rp, name, generator_dir, train_limit=params["data"].get("train_limit")
            )
        ended = time.time()
        if result.error is not None:
            raise RuntimeError(f"training job {name} failed: {result.error}")
        with timing.phase("restore"):
            method, step, history = ray_jobs.restore_method(cfg, result, generator_dir)
            timing.split_ray_job(started, ended, ray_jobs.worker_timing(result), history)
            ray_jobs.discard_run(result)  # exported below; a forced rerun must train again
    seconds = time.perf_counter() - t0
    if run is not None:
        with timing.phase("mlflow"):
            run.log_history(history)
            run.log_metrics({"wall_seconds": seconds, "steps": step})
    timing.record_job(seconds, history, since=started)
    info = {"steps": step, "workers": workers, "final": without_times(history[-1]) if history else {}}
    out_dir.mkdir(parents=True, exist_ok=True)
    return method, info  # the caller writes train.json and the stage's timing (_write_outputs)


class _History(NullCallback):
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.rows.append({"step": step, "time": time.time(), **metrics})


def _fit_in_process(params: dict, cfg: TrainConfig, generator_dir: Path | None):
    """(method, steps, history) of :func:`dplc.train.fit` run here, without checkpoints."""
    split = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit"))
    generator = Codec.load(generator_dir).generator if generator_dir else None
    history = _History()
    method, batches = setup(cfg, data.to_tensor(split.images, cfg.net.image_size), generator)
    result = fit(cfg, method, batches, None, [history])
    return method, result.steps, history.rows


def main() -> None:
    timing = Timing()
    ap = argparse.ArgumentParser(description="train one per-rate codec")
    ap.add_argument("--method", required=True, choices=PER_RATE)
    ap.add_argument("--generator", default=None, choices=GENERATIVE, help="G* (dplc)")
    ap.add_argument("--rate", type=int, required=True, help="code channels C")
    args = ap.parse_args()
    if BY_NAME[args.method].into_generator and not args.generator:
        ap.error(f"--generator is required for {args.method}")
    params = P.load()
    with timing.phase("mlflow"):
        tracking.check_store(params)
    codec = P.codec_name(args.method, args.generator)
    cfg = P.train_config(params, args.method, args.rate, generator=args.generator)
    out_dir = L.train_dir(codec, args.rate)
    gen_dir = L.generator_codec(args.generator) if BY_NAME[args.method].into_generator else None
    run_name = L.train_run_name(codec, args.rate)
    with tracking.stage_run(params, "train", run_name=run_name) as run:
        with timing.phase("mlflow"):
            run.log_params(to_dict(cfg) | {"codec": codec, "rate_bits": cfg.net.bits_per_image})
        method, info = run_job(params, cfg, run_name, out_dir, gen_dir, run, timing)
        if isinstance(method, DPLC):  # the realism constraint's multiplier is an output
            info["lambda_rate"] = method.codec.meta["lambda_rate"] = method.dual.lam
            run.log_metrics({"lambda_rate_final": method.dual.lam})
        with timing.phase("export"):
            trained = export_codec(method, out_dir / "codec")
            test = data.read_split(L.prepared_dir(), "test", limit=64)
            grid = _sample_grid(
                trained, data.to_tensor(test.images, cfg.net.image_size), out_dir / "decodes.png"
            )
        with timing.phase("entropy_model"):
            _fit_entropy(trained, params, out_dir / "codec")
        if not trained.shares_noise:
            with timing.phase("onnx"):  # the torch-free decoder's graphs (dplc.runtime)
                from dplc.onnx_export import export_onnx

                export_onnx(trained, out_dir / "codec")
        with timing.phase("mlflow"):
            run.log_artifact(grid)
            if params["mlflow"].get("register", True):
                from dplc import registry

                name = P.registered_name(params, codec)
                mv = registry.log_and_register(out_dir / "codec", name, alias=f"c{args.rate}")
                registry.describe_model(name, *P.model_description(params, args.method, args.generator))
                g_sha = (json.loads((gen_dir / "codec.json").read_text())["weights_sha256"]
                         if gen_dir is not None else None)  # fmt: skip
                tags = P.version_tags(trained.net, trained.meta, trained.weights_hash(),
                                      run.run_id, g_sha)  # fmt: skip
                registry.tag_version(
                    name, mv.version, tags,
                    description=f"C = {args.rate} ({trained.net.bits_per_image:g} bits per image)",
                )  # fmt: skip
                run.set_tags({"dplc.registered": f"models:/{name}/{mv.version}"})
        _write_outputs(out_dir, run_name, info, timing, run)


def _write_outputs(out_dir: Path, run_name: str, info: dict, timing: Timing, run: tracking.StageRun) -> None:
    """train.json (what the inputs determine) and the job's timing file (what it cost besides
    training, :mod:`pipelines.stage_timing`), both also in MLflow."""
    (out_dir / "train.json").write_text(json.dumps(info, indent=2))
    times = timing.summary()
    path = stage_timing.write(run_name, times)
    run.log_metrics({"overhead_seconds": times["overhead_seconds"]})
    run.log_artifact(out_dir / "train.json")
    run.log_artifact(path)


def _fit_entropy(codec: Codec, params: dict, codec_dir: Path) -> None:
    """Fit the per-channel probability model on the training symbols and save it with the codec."""
    train = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit"))
    fit_entropy_model(codec, data.to_tensor(train.images, codec.net.image_size)).save(codec_dir)


def main_generator() -> None:
    """DVC stage `generator`: G* by wpp, wgan_gp or wae (``--method``), saved as a prior codec."""
    timing = Timing()
    ap = argparse.ArgumentParser(description="train one unconstrained generator G*")
    ap.add_argument("--method", required=True, choices=GENERATIVE)
    args = ap.parse_args()
    params = P.load()
    with timing.phase("mlflow"):
        tracking.check_store(params)
    cfg = P.train_config(params, args.method)
    out_dir = L.generator_dir(args.method)
    run_name = f"generator-{args.method}"
    with tracking.stage_run(params, "generator", run_name=run_name) as run:
        with timing.phase("mlflow"):
            run.log_params(to_dict(cfg))
        method, info = run_job(params, cfg, run_name, out_dir, None, run, timing)
        with timing.phase("export"):
            g = export_generator(method, out_dir / "codec")
            samples = g.sample(64, seed=0)
            save_tile(to_pictures(samples.numpy(), *samples.shape[-2:]), out_dir / "samples.png", nrow=8)
        with timing.phase("mlflow"):
            run.log_artifact(out_dir / "samples.png")
            run.log_artifact(out_dir / "codec", "generator")
        _write_outputs(out_dir, run_name, info, timing, run)


if __name__ == "__main__":
    main()
