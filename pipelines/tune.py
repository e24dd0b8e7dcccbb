"""DVC stage `tune`: a seeded Ray Tune search over what the realism constraint leaves open.

    python -m pipelines.tune

Each trial is a Tune function trainable that runs the library's training loop in the trial's
own actor (its CPUs reserved by ``tune.with_resources``) and reports validation metrics to Tune
at every checkpoint. (A TorchTrainer per trial, as the ``train`` stage uses, leaked its
placement group between sequential trials here: Ray 2.60 without the dashboard cannot run its
placement-group cleaner, and the next trial waited forever for CPUs.)

dplc's λ_rate is no longer searched: it is the Lagrange multiplier of the constraint "held-out
latent MMD ≤ ε null standard deviations", set during training by dual ascent
(:mod:`dplc.realism`). Tune searches what is left (the learning rate for dplc; λ_gan, n_critic,
gp_weight or critic_lr for ``tune.method: gc``), and scores a trial by

    score = val_mse · (1 + penalty · max(0, val_mmd_sd − mmd_limit_sd))

on training images held out from the trial's training (never the test split), so among the
trials that meet the constraint the lowest distortion wins. The search is reproducible: the
searcher is seeded with ``seed`` and the default scheduler is FIFO (``tune.scheduler: asha``
stops trials early, but its decisions depend on which trial reports first).

The search space is ``tune.search`` in params: ``name: [low, high]`` (log-uniform for floats,
uniform integers for ints) or ``name: {choice: [...]}``, over the keys of
:class:`dplc.config.MethodConfig` of ``tune.method``. The best configuration goes to
``runs/tune/best.yaml``, which ``pipelines.params.train_config`` merges into training; every
trial is logged to MLflow as a nested run.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import BasicVariantGenerator

from dplc import data, losses, realism
from dplc.codec import Codec
from dplc.config import MethodConfig, TrainConfig, from_dict, to_dict
from dplc.method import Method
from dplc.method_specs import BY_NAME
from dplc.train import NullCallback, fit, setup
from pipelines import layout as L
from pipelines import params as P
from pipelines import ray_jobs, stage_timing, tracking


def validate(method: Method, images: torch.Tensor, null: realism.NullSpread | None) -> dict[str, float]:
    """Held-out metrics of a per-rate codec: MSE of seeded decodes and the latent MMD of B
    against N(0, I) in null standard deviations (:func:`dplc.realism.latent_mmd_sd`)."""
    codec = getattr(method, "codec", None)
    if codec is None or images.shape[0] < 2:
        return {}
    method.train(False)
    with torch.no_grad():
        x = data.to_float(images)
        gen = torch.Generator().manual_seed(0)
        noise = codec.draw_noise(x.shape[0], gen)
        latent = codec.latent(codec.code(x), noise)
        x_hat = codec.generator(latent)
        out = {"val_mse": float(losses.mse(x_hat, x))}
        if codec.mode == "map" and null is not None:
            out["val_mmd_sd"] = realism.latent_mmd_sd(latent, null, seed=1)
    method.train(True)
    return out


def objective(metrics: dict[str, float], mmd_limit_sd: float, penalty: float) -> float:
    """score = val_mse · (1 + penalty · max(0, val_mmd_sd − mmd_limit_sd)) (lower is better):
    among trials that meet the realism constraint, the lowest distortion wins."""
    excess = max(0.0, metrics.get("val_mmd_sd", 0.0) - mmd_limit_sd)
    return metrics["val_mse"] * (1.0 + penalty * excess)


class _TuneReporter(NullCallback):
    """At every checkpoint: validate on the held-out images and ``tune.report`` the score."""

    def __init__(self, method, val_images, null, score: dict[str, float], label: str = "tune") -> None:
        self.method, self.val_images, self.null, self.label = method, val_images, null, label
        self.score = score
        self.last: dict[str, float] = {}

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.last = metrics

    def on_checkpoint(self, step: int, path: Path) -> None:
        m = {"step": step, **self.last, **validate(self.method, self.val_images, self.null)}
        m["score"] = objective(m, self.score["mmd_limit_sd"], self.score["penalty"])
        print(f"[{self.label}] step {step} validation: mse {m['val_mse']:.4g} "
              f"mmd {m.get('val_mmd_sd', float('nan')):.3g} sd, λ_rate "
              f"{m.get('lambda_rate', float('nan')):.4g}, score {m['score']:.4g}", flush=True)
        tune.report(m)


def run_trial(base: dict[str, Any], overrides: dict[str, Any], data_dir: str, generator_dir: str | None,
              holdout: int, train_limit: int | None, score: dict[str, float], trial_dir: str) -> None:  # fmt: skip
    """One trial: train ``base`` + ``overrides`` on all but ``holdout`` images, report to Tune.

    The last ``holdout`` training images score the trial; dplc's realism constraint holds out
    its own images from the rest (:func:`dplc.train.split_holdout`), as in the train stage.
    """
    cfg = trial_config(from_dict(TrainConfig, base), overrides, int(base["loop"]["steps"]))
    label = "tune " + " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in overrides.items())  # fmt: skip
    cfg = TrainConfig(cfg.net, cfg.method, dataclasses.replace(cfg.loop, label=label))
    split = data.read_split(data_dir, "train", limit=train_limit)
    images = data.to_tensor(split.images, cfg.net.image_size)
    generator = Codec.load(generator_dir).generator if generator_dir else None
    method, batches = setup(cfg, images[:-holdout], generator)
    null = realism.mmd_null(holdout, cfg.net.latent_dim) if cfg.net.code_channels else None
    reporter = _TuneReporter(method, images[-holdout:], null, score, label)
    fit(cfg, method, batches, Path(trial_dir), [reporter], resume=False)


def scheduler(t: dict[str, Any]) -> TrialScheduler:
    """``tune.scheduler``: ``fifo`` (every trial runs all its steps, so the same params give the
    same trials and the same winner) or ``asha`` (early stopping, whose decisions depend on
    which trial reports first)."""
    kind = t.get("scheduler", "fifo")
    if kind == "fifo":
        return FIFOScheduler()
    if kind == "asha":
        return ASHAScheduler(time_attr="step", max_t=int(t["steps"]),
                             grace_period=int(t["grace_steps"]), reduction_factor=2)  # fmt: skip
    raise ValueError(f"tune.scheduler must be 'fifo' or 'asha', got {kind!r}")


def search_space(spec: dict[str, Any]) -> dict[str, Any]:
    """params' ``tune.search`` -> Ray Tune domains (validated against MethodConfig's fields)."""
    fields = MethodConfig.__dataclass_fields__
    space: dict[str, Any] = {}
    for key, value in spec.items():
        if key not in fields:
            raise ValueError(f"tune.search: {key!r} is not a MethodConfig field")
        if isinstance(value, dict) and "choice" in value:
            space[key] = tune.choice(list(value["choice"]))
        elif isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
            space[key] = tune.randint(value[0], value[1] + 1)
        elif isinstance(value, list) and len(value) == 2:
            space[key] = tune.loguniform(float(value[0]), float(value[1]))
        else:
            raise ValueError(
                f"tune.search.{key}: expected [low, high] or {{choice: [...]}}, got {value!r}"
            )
    return space


def trial_config(base: TrainConfig, overrides: dict[str, Any], steps: int) -> TrainConfig:
    method = from_dict(MethodConfig, to_dict(base.method) | overrides)
    loop = from_dict(type(base.loop), to_dict(base.loop) | {"steps": steps})
    return TrainConfig(base.net, method, loop)


def main() -> None:
    timing = stage_timing.Timing()
    params = P.load()
    tracking.check_store(params)
    t = params["tune"]
    out = L.tune_dir()
    out.mkdir(parents=True, exist_ok=True)
    method = t.get("method", "dplc")
    rate = int(t["rate"])
    best_file = L.tuned_file()
    if not t.get("enabled", True):
        best_file.write_text(yaml.safe_dump({"tuned": False}))
        stage_timing.write("tune", timing.summary())
        return
    rp = P.ray_params(params)
    threads = int(t.get("threads", rp.threads_per_worker))  # per trial; trials run side by side
    score = {"mmd_limit_sd": float(t["mmd_limit_sd"]), "penalty": float(t["penalty"])}
    trial = make_trial(params, t, method, rate, threads, score)
    storage = L.ray_storage().resolve()
    storage.mkdir(parents=True, exist_ok=True)
    ray_jobs.init_ray(rp)
    tuner = tune.Tuner(
        tune.with_resources(trial, {"CPU": max(1, threads)}),
        param_space=search_space(t["search"]),
        tune_config=tune.TuneConfig(
            metric="score",
            mode="min",
            num_samples=int(t["num_samples"]),
            # the generator limits its own trials: Tune ignores max_concurrent_trials (and warns)
            # when the search algorithm is a SearchGenerator such as this one
            search_alg=BasicVariantGenerator(max_concurrent=int(t["max_concurrent"]),
                                             random_state=int(params["seed"])),  # fmt: skip
            scheduler=scheduler(t),
        ),
        # verbose=0: no Tune tables; each trial prints its progress and validation lines itself
        run_config=tune.RunConfig(name="tune", storage_path=str(storage), verbose=0),
    )
    with timing.phase("trials"):
        results = tuner.fit()
    summary = summarize(results, method, rate, score)
    best_file.write_text(yaml.safe_dump(summary, sort_keys=True))
    print(yaml.safe_dump(summary))
    log_results(params, t, summary, results, best_file)
    stage_timing.write("tune", timing.summary())


def make_trial(params: dict, t: dict, method: str, rate: int, threads: int, score: dict):
    """The Tune function trainable: :func:`run_trial` on the stage's base config, with
    checkpoints every ``report_every`` steps under ``runs/tune/trials/<trial id>``."""
    base = P.train_config(params, method, rate, best={})
    loop = to_dict(base.loop) | {"checkpoint_every": int(t["report_every"]), "threads": threads}
    base = from_dict(TrainConfig, to_dict(base) | {"loop": loop})
    base_dict = to_dict(trial_config(base, {}, int(t["steps"])))
    gen_dir = L.generator_codec(L.HEADLINE_GENERATOR).resolve() if BY_NAME[method].into_generator else None
    data_dir = str(L.prepared_dir().resolve())
    ckpt_root = (L.tune_dir() / "trials").resolve()
    holdout = int(t.get("val_holdout", 1000))
    train_limit = params["data"].get("train_limit")

    def trial(config: dict[str, Any]) -> None:
        trial_dir = ckpt_root / tune.get_context().get_trial_id()
        run_trial(base_dict, config, data_dir, str(gen_dir) if gen_dir else None, holdout,
                  train_limit, score, str(trial_dir))  # fmt: skip

    return trial


def summarize(results: Any, method: str, rate: int, score: dict) -> dict[str, Any]:
    """``best.yaml``: the winning trial's score, validation figures and config (no wall time,
    so that a rerun with the same outcome leaves the training stages after it alone)."""
    best = results.get_best_result(metric="score", mode="min")
    return {
        "tuned": True,
        "method": method,
        "rate": rate,
        "score": float(best.metrics["score"]),
        "val_mse": float(best.metrics.get("val_mse", float("nan"))),
        "val_mmd_sd": float(best.metrics.get("val_mmd_sd", float("nan"))),
        "final_lambda_rate": float(best.metrics.get("lambda_rate", float("nan"))),
        "trials": len(results),
        "mmd_limit_sd": score["mmd_limit_sd"],
    } | {k: (float(v) if isinstance(v, float) else v) for k, v in best.config.items()}


TRIAL_METRICS = ("score", "val_mse", "val_mmd_sd", "lambda_rate", "loss")


def log_results(params: dict, t: dict, summary: dict, results: Any, best_file: Path) -> None:
    """The tune stage's MLflow run, with one nested run per trial and its metric history."""
    with tracking.stage_run(params, "tune") as run:
        run.log_params({"tune": t})
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
        run.log_artifact(best_file)
        for i, r in enumerate(results):
            with tracking.stage_run(params, "tune-trial", run_name=f"trial-{i}", nested=True) as tr:
                tr.log_params(r.config)
                if r.metrics_dataframe is None:
                    continue
                for _, row in r.metrics_dataframe.iterrows():
                    tr.log_metrics({k: row[k] for k in TRIAL_METRICS if k in row},
                                   step=int(row.get("step", 0)))  # fmt: skip

if __name__ == "__main__":
    main()
