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
from dplc.method_specs import BY_NAME
from pipelines import layout as L

ROOT = Path(__file__).resolve().parent.parent
PARAMS = ROOT / "params.yaml"


@dataclass(frozen=True)
class RayParams:
    address: str | None
    num_workers: int
    use_gpu: bool
    threads_per_worker: int
    max_failures: int
    report_every: int
    local_mode: str = "auto"
    """``auto``: a one-CPU-worker job on this machine runs in Ray Train's local mode
    (:func:`pipelines.ray_jobs.runs_locally`); ``never``: always on worker actors."""


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


def tuned(path: Path | None = None) -> dict[str, Any]:
    """The best configuration of the tune stage ({} when tuning is off or has not run)."""
    path = path or L.tuned_file()
    return yaml.safe_load(path.read_text()) or {} if path.is_file() else {}


def tuned_overrides(best: dict[str, Any]) -> dict[str, Any]:
    """The MethodConfig fields the tune stage chose (its summary's other keys are reports)."""
    fields = MethodConfig.__dataclass_fields__
    return {k: v for k, v in best.items() if k in fields and k != "name"}


def _overlay(base: dict, own: dict) -> dict:
    """``base`` with ``own``'s keys replacing its own, one level down in ``method``."""
    return base | own | {"method": base.get("method", {}) | own.get("method", {})}


PER_RATE_KEYS = ("steps", "noise", "method")
"""What ``train.<method>.per_rate.<C>`` sets for that rate's runs over the method's section:
the step count, whether B gets noise (a per-rate method with decoder noise), MethodConfig keys."""


def _at_rate(params: dict, method: str, section: dict, code_channels: int) -> dict:
    """``section`` with its ``per_rate`` entry for ``code_channels`` laid over it (:func:`_overlay`);
    an entry for a rate not on the ladder, or with a key outside :data:`PER_RATE_KEYS`, is refused."""
    per_rate = section.get("per_rate") or {}
    for rate, own in per_rate.items():
        where = f"train.{method}.per_rate.{rate}"
        if rate not in params["ladder"] or rate == 0:
            raise ValueError(f"{where}: {rate!r} is not a positive rate of the ladder {params['ladder']}")
        unknown = sorted(set(own or {}) - set(PER_RATE_KEYS))
        if unknown:
            raise ValueError(f"{where}: unknown settings {unknown}; a rate may set {list(PER_RATE_KEYS)}")
    return _overlay(section, per_rate.get(code_channels) or {})


def train_config(
    params: dict,
    method: str,
    code_channels: int = 0,
    best: dict | None = None,
    generator: str | None = None,
) -> TrainConfig:
    """The full TrainConfig of ``method`` (generator or per-rate) at ``code_channels``.

    ``train.dplc.steps_by_generator`` may give dplc a different step count per G* (the
    comparison generators get fewer steps than the headline Wasserstein++ one), and a per-rate
    method's ``per_rate`` its settings at one rate (:func:`_at_rate`).
    """
    spec = BY_NAME[method]
    if spec.generative and method in params["generator"]:
        section, common = params["generator"][method], params["generator"]
    else:
        section = params["train"][method] if not spec.trains_like else _overlay(
            params["train"][spec.trains_like], params["train"].get(method) or {}
        )  # a method that trains like another: its own section, if any, overlays that one's
        common = params["train"]
    if spec.per_rate:
        section = _at_rate(params, method, section, code_channels)
    overrides = dict(section.get("method", {}))
    if spec.into_generator:
        overrides |= tuned_overrides(tuned() if best is None else best)
    mcfg = from_dict(MethodConfig, method_defaults(method) | overrides)
    ray = ray_params(params)
    steps = int(section["steps"])
    if generator is not None:
        steps = int(section.get("steps_by_generator", {}).get(generator, steps))
    if code_channels == 0 and spec.rate0_steps is not None:
        steps = min(steps, spec.rate0_steps)
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
    noise = spec.decoder_noise and bool(section.get("noise", True))
    return TrainConfig(net_config(params, code_channels, noise=noise), mcfg, loop)


def ray_params(params: dict) -> RayParams:
    r = params["ray"]
    return RayParams(
        address=os.environ.get("RAY_ADDRESS") or r.get("address"),
        num_workers=int(r["num_workers"]),
        use_gpu=bool(r["use_gpu"]),
        threads_per_worker=int(r["threads_per_worker"]),
        max_failures=int(r["max_failures"]),
        report_every=int(r["report_every"]),
        local_mode=_local_mode(r.get("local_mode", "auto")),
    )


LOCAL_MODES = ("auto", "never")


def _local_mode(value: object) -> str:
    if value not in LOCAL_MODES:
        raise ValueError(f"ray.local_mode must be one of {LOCAL_MODES}, got {value!r}")
    return str(value)


def report_dir(params: dict) -> Path:
    """Where the report and gaussian stages write (``report_dir``: ``reports`` for the default
    profile, a folder under runs/ for the others, so they never overwrite the committed ones)."""
    return ROOT / params.get("report_dir", "reports")


# ------------------------------------------------------------------- registry vocabulary

def codec_name(method: str, generator: str | None) -> str:
    """The codec's name in paths and the registry: ``dplc_wpp``, ``gc``, ``cae``."""
    return f"{method}_{generator}" if BY_NAME[method].into_generator else method


HEADLINE_DPLC = codec_name("dplc", L.HEADLINE_GENERATOR)
"""DPLC on the headline generator: the codec the README's table and the findings quote."""
HEADLINE_SHARED = codec_name("dplc_shared", L.HEADLINE_GENERATOR)
"""DPLC with shared noise on the headline generator."""


def parse_codec_name(codec: str) -> tuple[str, str | None]:
    """(method, generator) of a codec name, the inverse of :func:`codec_name`."""
    for generator in (name for name, spec in BY_NAME.items() if spec.generative):
        method = codec.removesuffix(f"_{generator}")
        if method != codec and BY_NAME.get(method) is not None and BY_NAME[method].into_generator:
            return method, generator
    return codec, None


def registered_name(params: dict, codec: str) -> str:
    """The registered model of a codec: ``<dataset>-<codec>`` (one version per rate)."""
    return f"{params['data']['source']}-{codec}"


def fid_features(params: dict) -> str:
    """The features FIDs are computed on: the domain network, plus Inception when configured."""
    return "featnet" + ("+inception" if params["featnet"].get("inception_weights") else "")


def model_description(params: dict, method: str, generator: str | None) -> tuple[str, dict]:
    """A registered model's description and tags, for the MLflow UI."""
    d = params["data"]
    text = BY_NAME[method].description.format(generator=generator) + (
        f" Dataset: {d['source']} at {d['image_size']}x{d['image_size']}. One version per rate, "
        f"aliased c<C> (C code channels); FIDs on {fid_features(params)} features. Decode with "
        "`python -m dplc.compress decompress FILE -o DIR` (ONNX Runtime, no torch needed)."
    )
    tags = {"dataset": d["source"], "method": method, "image_size": d["image_size"],
            "fid_features": fid_features(params), "profile": params.get("profile_name", "default")}  # fmt: skip
    if generator:
        tags["generator"] = generator
    return text, tags


def version_tags(net: NetConfig, meta: dict, weights_sha256: str, run_id: str,
                 generator_sha256: str | None) -> dict[str, Any]:  # fmt: skip
    """A registered version's tags from training: rate, geometry, provenance (and λ_rate)."""
    tags: dict[str, Any] = {
        "bits_per_image": f"{net.bits_per_image:g}",
        "code_channels": net.code_channels,
        "levels": net.levels,
        "weights_sha256": weights_sha256,
        "training_run_id": run_id,
    }
    if generator_sha256:
        tags["generator_sha256"] = generator_sha256
    if "lambda_rate" in meta:
        tags["lambda_rate"] = f"{float(meta['lambda_rate']):.4g}"
    return tags
