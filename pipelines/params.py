"""params.yaml -> typed configuration for the stages (the only place params are read).

Every stage calls :func:`load` and then asks for what it needs, e.g. :func:`train_config` for
one method at one rate. Tuned values written by the ``tune`` stage (``runs/tune/best.yaml``)
are merged in for ``dplc`` when present, so the DAG carries the search result to training; the
same tuned values serve every rate (λ_rate is not among them: each rate's realism constraint
sets its own by dual ascent).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dplc.config import (
    LoopConfig,
    MethodConfig,
    NetConfig,
    TrainConfig,
    from_dict,
    method_defaults,
)

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / "params.yaml"
RUNS = ROOT / "runs"
TUNED = RUNS / "tune" / "best.yaml"


@dataclass(frozen=True)
class RayParams:
    address: str | None
    num_workers: int
    use_gpu: bool
    threads_per_worker: int
    max_failures: int
    report_every: int


def load(path: str | Path | None = None) -> dict[str, Any]:
    """The params dict (params.yaml at the repo root unless ``DPLC_PARAMS`` or ``path`` says)."""
    p = Path(path or os.environ.get("DPLC_PARAMS", PARAMS))
    if not p.is_file():
        raise FileNotFoundError(f"params file not found: {p}")
    return yaml.safe_load(p.read_text())


def net_config(params: dict, code_channels: int = 0, noise: bool = True) -> NetConfig:
    d = params["data"]
    return from_dict(
        NetConfig,
        dict(params["net"])
        | {
            "image_size": d["image_size"],
            "channels": d["channels"],
            "code_channels": code_channels,
            "noise": noise,
        },
    )


def tuned(path: Path = TUNED) -> dict[str, Any]:
    """The best configuration of the tune stage ({} when tuning is off or has not run)."""
    return yaml.safe_load(path.read_text()) or {} if path.is_file() else {}


def tuned_overrides(best: dict[str, Any]) -> dict[str, Any]:
    """The MethodConfig fields the tune stage chose (its summary's other keys are reports)."""
    fields = MethodConfig.__dataclass_fields__
    return {k: v for k, v in best.items() if k in fields and k != "name"}


# At C = 0 dplc decodes G*(z) and cae the training mean: nothing is learned, so their jobs run
# only the few steps that record the loss (cae: the running mean over 100 batches).
RATE0_STEPS = {"dplc": 1, "cae": 100}


def train_config(
    params: dict,
    method: str,
    code_channels: int = 0,
    best: dict | None = None,
    generator: str | None = None,
) -> TrainConfig:
    """The full TrainConfig of ``method`` (generator or per-rate) at ``code_channels``.

    ``train.dplc.steps_by_generator`` may give dplc a different step count per G* (the
    comparison generators get fewer steps than the headline Wasserstein++ one).
    """
    if method in params["generator"] and method in ("wpp", "wgan_gp", "wae"):
        section, common = params["generator"][method], params["generator"]
    else:
        section, common = params["train"][method], params["train"]
    overrides = dict(section.get("method", {}))
    if method == "dplc":
        overrides |= tuned_overrides(tuned() if best is None else best)
    mcfg = from_dict(MethodConfig, method_defaults(method) | overrides)
    ray = ray_params(params)
    steps = int(section["steps"])
    if generator is not None:
        steps = int(section.get("steps_by_generator", {}).get(generator, steps))
    if code_channels == 0 and method in RATE0_STEPS:
        steps = min(steps, RATE0_STEPS[method])
    label = f"{method}_{generator}" if generator else method
    if code_channels:
        label += f" C={code_channels}"
    loop = LoopConfig(
        steps=steps,
        seed=int(params["seed"]) + code_channels,
        checkpoint_every=int(common.get("checkpoint_every", 250)),
        log_every=int(common.get("log_every", 50)),
        precision=common.get("precision", "fp32"),
        channels_last=bool(common.get("channels_last", True)),
        threads=ray.threads_per_worker,
        label=label,
    )
    return TrainConfig(net_config(params, code_channels, noise=method != "cae"), mcfg, loop)


def ray_params(params: dict) -> RayParams:
    r = params["ray"]
    return RayParams(
        address=os.environ.get("RAY_ADDRESS") or r.get("address"),
        num_workers=int(r["num_workers"]),
        use_gpu=bool(r["use_gpu"]),
        threads_per_worker=int(r["threads_per_worker"]),
        max_failures=int(r["max_failures"]),
        report_every=int(r["report_every"]),
    )


def report_dir(params: dict) -> Path:
    """Where the report and gaussian stages write (``report_dir``: ``reports`` for the default
    profile, a folder under runs/ for the others, so they never overwrite the committed ones)."""
    return ROOT / params.get("report_dir", "reports")


def prepared_dir() -> Path:
    return RUNS.parent / "data" / "prepared"
