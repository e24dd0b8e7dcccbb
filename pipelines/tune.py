"""DVC stage `tune`: Ray Tune search over the per-rate method's settings, ASHA early stopping.

    python -m pipelines.tune

Each trial is a Tune function trainable that runs the library's training loop in the trial's
own actor (its CPUs reserved by ``tune.with_resources``) and reports validation metrics to Tune
at every checkpoint, so ASHA can stop it early. (A TorchTrainer per trial, as the ``train``
stage uses, leaked its placement group between sequential trials here: Ray 2.60 without the
dashboard cannot run its placement-group cleaner, and the next trial waited forever for CPUs.)
The objective is a documented scalarisation of "validation MSE under an MMD constraint":

    score = val_mse + penalty · max(0, val_mmd − mmd_limit)

both measured on training images held out from the trial's training (never the test split).
``mmd_limit: auto`` sets the limit to 4 standard deviations of the MMD estimate between two
independent prior samples of the held-out size (:func:`mmd_null`): B's latents must be as
indistinguishable from N(0, I) as the test can tell. Measured on the default profile (C = 1,
600 steps): λ_rate 10 / 40 / 160 gave held-out MMD 0.0016 / 0.0022 / 0.0001 (null s.d.
0.0005), MSE 0.116 / 0.145 / 0.211 and PV 0.023 / 0.046 / 0.091: MMD on a thousand latents
barely sees a B that ignores its noise, so the search range's floor matters too.
The search space is ``tune.search`` in params: ``name: [low, high]`` (log-uniform for floats,
uniform integers for ints) or ``name: {choice: [...]}``, over the keys of
:class:`dplc.config.MethodConfig` of ``tune.method`` (``dplc`` by default: λ_rate and lr; for
``gc`` or ``wpp`` λ_gan/λ_adv, n_critic, gp_weight, critic_lr). The best configuration goes to
``runs/tune/best.yaml``, which ``pipelines.params.train_config`` merges into training; every
trial is logged to MLflow as a nested run.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch
import yaml
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from dplc import data, losses
from dplc.codec import Codec
from dplc.config import MethodConfig, TrainConfig, from_dict, to_dict
from dplc.methods import Method, build_method
from dplc.train import NullCallback, seed_everything, set_threads, train
from pipelines import params as P
from pipelines import ray_jobs, tracking


def validate(method: Method, images: torch.Tensor) -> dict[str, float]:
    """Held-out metrics of a per-rate codec: MSE of seeded decodes, MMD of B's latents to N(0, I)."""
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
        if codec.mode == "map":
            z = torch.randn(latent.shape, generator=gen)
            out["val_mmd"] = float(losses.mmd_imq(latent, z))
    method.train(True)
    return out


def mmd_null(n: int, dim: int, draws: int = 20, seed: int = 0) -> tuple[float, float]:
    """Mean and s.d. of the held-out MMD estimate between two independent N(0, I) samples of
    ``n`` points: the spread a perfectly distribution-preserving B would still show."""
    g = torch.Generator().manual_seed(seed)
    v = torch.tensor(
        [float(losses.mmd_imq(torch.randn(n, dim, generator=g), torch.randn(n, dim, generator=g)))
         for _ in range(draws)]
    )  # fmt: skip
    return float(v.mean()), float(v.std())


def mmd_limit_of(t: dict, n: int, dim: int) -> tuple[float, dict[str, float]]:
    """``tune.mmd_limit``: a number, or ``auto`` = 4 null standard deviations at ``n`` points."""
    mean, sd = mmd_null(n, dim)
    info = {"mmd_null_mean": mean, "mmd_null_sd": sd}
    if t["mmd_limit"] == "auto":
        return 4.0 * sd, info
    return float(t["mmd_limit"]), info


def objective(metrics: dict[str, float], mmd_limit: float, penalty: float) -> float:
    """score = val_mse + penalty · max(0, val_mmd − mmd_limit) (lower is better)."""
    return metrics["val_mse"] + penalty * max(0.0, metrics.get("val_mmd", 0.0) - mmd_limit)


class _TuneReporter(NullCallback):
    """At every checkpoint: validate on the held-out images and ``tune.report`` the score."""

    def __init__(self, method, val_images, mmd_limit: float, penalty: float, label: str = "tune") -> None:
        self.method, self.val_images, self.label = method, val_images, label
        self.mmd_limit, self.penalty = mmd_limit, penalty
        self.last: dict[str, float] = {}

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.last = metrics

    def on_checkpoint(self, step: int, path: Path) -> None:
        m = {"step": step, **self.last, **validate(self.method, self.val_images)}
        m["score"] = objective(m, self.mmd_limit, self.penalty)
        print(f"[{self.label}] step {step} validation: mse {m['val_mse']:.4g} "
              f"mmd {m.get('val_mmd', float('nan')):.4g} score {m['score']:.4g}", flush=True)
        tune.report(m)


def run_trial(base: dict[str, Any], overrides: dict[str, Any], data_dir: str, generator_dir: str | None,
              holdout: int, train_limit: int | None, score: dict[str, float], trial_dir: str) -> None:  # fmt: skip
    """One trial: train ``base`` + ``overrides`` on all but ``holdout`` images, report to Tune."""
    cfg = trial_config(from_dict(TrainConfig, base), overrides, int(base["loop"]["steps"]))
    label = "tune " + " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in overrides.items())  # fmt: skip
    cfg = TrainConfig(cfg.net, cfg.method, dataclasses.replace(cfg.loop, label=label))
    set_threads(cfg.loop.threads)
    split = data.read_split(data_dir, "train", limit=train_limit)
    images = data.to_tensor(split.images, cfg.net.image_size)
    train_images, val_images = images[:-holdout], images[-holdout:]
    generator = Codec.load(generator_dir).generator if generator_dir else None
    seed_everything(cfg.loop.seed)
    method = build_method(cfg.net, cfg.method, cfg.loop.steps, cfg.loop.precision, generator)
    reporter = _TuneReporter(method, val_images, score["mmd_limit"], score["penalty"], label)
    train(
        method,
        data.BatchSampler(train_images, cfg.loop.seed),
        cfg.loop,
        Path(trial_dir),
        [reporter],
        resume=False,
    )


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
    params = P.load()
    tracking.check_store(params)
    t = params["tune"]
    out = P.RUNS / "tune"
    out.mkdir(parents=True, exist_ok=True)
    method = t.get("method", "dplc")
    rate = int(t["rate"])
    best_file = out / "best.yaml"
    if not t.get("enabled", True):
        best_file.write_text(yaml.safe_dump({"tuned": False}))
        return
    base = P.train_config(params, method, rate, best={})
    rp = P.ray_params(params)
    gen_dir = (P.RUNS / "generator" / "wpp" / "codec").resolve() if method == "dplc" else None
    every = int(t["report_every"])
    threads = int(t.get("threads", rp.threads_per_worker))  # per trial; trials run side by side
    base = from_dict(
        TrainConfig,
        to_dict(base) | {"loop": to_dict(base.loop) | {"checkpoint_every": every, "threads": threads}},
    )
    holdout = int(t.get("val_holdout", 1000))
    limit, null = mmd_limit_of(t, holdout, base.net.latent_dim)
    score = {"mmd_limit": limit, "penalty": float(t.get("penalty", 10.0))}
    storage = (P.RUNS / "ray").resolve()
    storage.mkdir(parents=True, exist_ok=True)
    train_limit = params["data"].get("train_limit")

    base_dict = to_dict(trial_config(base, {}, int(t["steps"])))
    data_dir = str(P.prepared_dir().resolve())
    ckpt_root = (P.RUNS / "tune" / "trials").resolve()

    def trial(config: dict[str, Any]) -> None:
        trial_dir = ckpt_root / tune.get_context().get_trial_id()
        run_trial(
            base_dict,
            config,
            data_dir,
            str(gen_dir) if gen_dir else None,
            holdout,
            train_limit,
            score,
            str(trial_dir),
        )

    ray_jobs.init_ray(rp)
    t0 = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(trial, {"CPU": max(1, threads)}),
        param_space=search_space(t["search"]),
        tune_config=tune.TuneConfig(
            metric="score",
            mode="min",
            num_samples=int(t["num_samples"]),
            max_concurrent_trials=int(t["max_concurrent"]),
            scheduler=ASHAScheduler(
                time_attr="step",
                max_t=int(t["steps"]),
                grace_period=int(t["grace_steps"]),
                reduction_factor=2,
            ),
        ),
        # verbose=0: no Tune tables; each trial prints its progress and validation lines itself
        run_config=tune.RunConfig(name="tune", storage_path=str(storage), verbose=0),
    )
    results = tuner.fit()
    seconds = time.perf_counter() - t0
    best = results.get_best_result(metric="score", mode="min")
    summary = {
        "tuned": True,
        "method": method,
        "rate": rate,
        "score": float(best.metrics["score"]),
        "val_mse": float(best.metrics.get("val_mse", float("nan"))),
        "val_mmd": float(best.metrics.get("val_mmd", float("nan"))),
        "trials": len(results),
        "seconds": round(seconds, 1),
        "mmd_limit": limit,
        **null,
    } | {k: (float(v) if isinstance(v, float) else v) for k, v in best.config.items()}
    best_file.write_text(yaml.safe_dump(summary, sort_keys=True))
    print(yaml.safe_dump(summary))
    with tracking.stage_run(params, "tune") as run:
        run.log_params({"tune": t})
        run.log_metrics({k: v for k, v in summary.items() if isinstance(v, float)})
        run.log_artifact(best_file)
        for i, r in enumerate(results):
            with tracking.stage_run(
                params, "tune-trial", run_name=f"trial-{i}", nested=True
            ) as trial_run:
                trial_run.log_params(r.config)
                if r.metrics_dataframe is not None:
                    for _, row in r.metrics_dataframe.iterrows():
                        step = int(row.get("step", 0))
                        trial_run.log_metrics(
                            {
                                k: row[k]
                                for k in ("score", "val_mse", "val_mmd", "loss")
                                if k in row
                            },
                            step=step,
                        )


if __name__ == "__main__":
    main()
