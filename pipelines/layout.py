"""The run folders: where each stage writes under ``runs/`` and ``data/``, named once.

The stages build every path from these functions, and :data:`STAGE_OUTS` spells the same paths
as ``dvc.yaml`` does (with its ``${item.*}`` placeholders), so ``tests/pipelines/test_layout.py``
can check that ``dvc.yaml`` declares exactly what the stages write and that every stage's data
deps are another stage's outputs.

>>> codec_dir("dplc_wpp", 4).relative_to(ROOT).as_posix()
'runs/train/dplc_wpp/4/codec'
>>> STAGE_OUTS["train"]
('runs/train/dplc_${item.generator}/${item.rate}', 'runs/timing/train-dplc_${item.generator}-c${item.rate}.json')
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "runs"
"""Everything the pipeline produces that is not a committed report."""

HEADLINE_GENERATOR = "wpp"
"""The generator the headline codecs decode into (Wasserstein++, the paper's method): the
shared-noise codecs train only into it, and the README and ``reports/results.json`` quote it."""


def prepared_dir() -> Path:
    """The prepared Parquet shards and their manifest (stage ``prepare``)."""
    return ROOT / "data" / "prepared"


def featnet_dir() -> Path:
    """The domain feature network for FID (stage ``featnet``)."""
    return RUNS / "featnet"


def featnet_weights() -> Path:
    return featnet_dir() / "featnet.safetensors"


def featnet_metrics() -> Path:
    return featnet_dir() / "metrics.json"


def generator_dir(method: str) -> Path:
    """One generator job's folder (stage ``generator``): train.json, samples.png, codec/."""
    return RUNS / "generator" / method


def generator_codec(method: str) -> Path:
    """G* as a rate-0 prior codec."""
    return generator_dir(method) / "codec"


def tune_dir() -> Path:
    """The tune stage's folder: best.yaml and the trials' checkpoints."""
    return RUNS / "tune"


def tuned_file() -> Path:
    """The tune stage's best configuration, merged into dplc's training."""
    return tune_dir() / "best.yaml"


def train_root() -> Path:
    """Every per-rate codec job (stages ``train`` and ``train_baseline``)."""
    return RUNS / "train"


def train_dir(codec: str, rate: int | str) -> Path:
    """One per-rate codec job's folder: train.json, decodes, codec/."""
    return train_root() / codec / str(rate)


def codec_dir(codec: str, rate: int | str) -> Path:
    """The codec folder a per-rate job exports (weights, entropy model, ONNX)."""
    return train_dir(codec, rate) / "codec"


def codec_dirs(rate: int | str) -> list[Path]:
    """Every trained codec folder at one rate, sorted by codec name."""
    return sorted(train_root().glob(f"*/{rate}/codec"))


def eval_dir() -> Path:
    """The evaluate stages' JSON files."""
    return RUNS / "eval"


def eval_file(rate: int | str) -> Path:
    return eval_dir() / f"c{rate}.json"


def classical_file() -> Path:
    return eval_dir() / "classical.json"


def gaussian_results() -> Path:
    """The Gaussian stage's results."""
    return RUNS / "gaussian" / "results.json"


def train_run_name(codec: str, rate: int | str) -> str:
    """A per-rate job's name: its MLflow run, Ray Train job and timing file."""
    return f"train-{codec}-c{rate}"


def eval_run_name(rate: int | str) -> str:
    """An evaluate stage's name (``classical`` for the classical baselines)."""
    return f"evaluate-{rate}" if str(rate) == "classical" else f"evaluate-c{rate}"


def timing_dir() -> Path:
    """Every stage's wall times (:mod:`pipelines.stage_timing`), apart from its outputs."""
    return RUNS / "timing"


def timing_file(run_name: str) -> Path:
    return timing_dir() / f"{run_name}.json"


def ray_storage() -> Path:
    """Ray Train's and Ray Tune's storage (interrupted jobs resume from here)."""
    return RUNS / "ray"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _timed(run_name: str) -> str:
    return _rel(timing_file(run_name))


STAGE_OUTS: dict[str, tuple[str, ...]] = {
    "prepare": (_rel(prepared_dir()), _timed("prepare")),
    "featnet": (_rel(featnet_weights()), _rel(featnet_metrics()), _timed("featnet")),
    "generator": (_rel(generator_dir("${item.method}")), _timed("generator-${item.method}")),
    "tune": (_rel(tuned_file()), _timed("tune")),
    "train": (_rel(train_dir("dplc_${item.generator}", "${item.rate}")),
              _timed(train_run_name("dplc_${item.generator}", "${item.rate}"))),
    "train_shared": (_rel(train_dir(f"dplc_shared_{HEADLINE_GENERATOR}", "${item.rate}")),
                     _timed(train_run_name(f"dplc_shared_{HEADLINE_GENERATOR}", "${item.rate}"))),
    "train_baseline": (_rel(train_dir("${item.method}", "${item.rate}")),
                       _timed(train_run_name("${item.method}", "${item.rate}"))),
    "evaluate": (_rel(eval_file("${item}")), _timed(eval_run_name("${item}"))),
    "evaluate_classical": (_rel(classical_file()), _timed(eval_run_name("classical"))),
    "gaussian": (_rel(gaussian_results()), _timed("gaussian")),
}
"""What each stage writes under runs/ and data/, as ``dvc.yaml`` spells it (outs and metrics;
the report's own files under ``report_dir`` are named by the report stage). Each stage's
timing file is a metric no stage depends on (:mod:`pipelines.stage_timing`)."""


def _paths(entries: list | None) -> list[str]:
    """The paths of a dvc.yaml ``deps``/``outs``/``metrics`` list (entries may carry options)."""
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or ()]


def _covers(a: str, b: str) -> bool:
    """One path is the other or a folder above it, ``${...}`` matching any one component."""
    pa, pb = a.split("/"), b.split("/")
    n = min(len(pa), len(pb))
    return all(x == y or x.startswith("${") or y.startswith("${") for x, y in zip(pa[:n], pb[:n], strict=True))


def check(dvc: dict) -> list[str]:
    """What is wrong between a parsed ``dvc.yaml`` and :data:`STAGE_OUTS`: a stage whose outs
    (and metrics) under runs/ or data/ differ from what it writes, or a data dep (not a ``.py``
    file) that no stage produces. Empty when they agree."""
    stages = dvc.get("stages", {})
    problems = []
    produced: list[str] = []
    for name, stage in stages.items():
        body = stage.get("do", stage)
        declared = [p for p in _paths(body.get("outs")) + _paths(body.get("metrics"))
                    if p.startswith(("runs/", "data/"))]  # fmt: skip
        produced += declared
        expected = STAGE_OUTS.get(name)
        if expected is not None and sorted(declared) != sorted(expected):
            problems.append(f"{name}: dvc.yaml declares {sorted(declared)}, the stage writes {sorted(expected)}")
        elif expected is None and declared:
            problems.append(f"{name}: writes {declared} under runs/ or data/ but pipelines.layout does not name it")
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for dep in _paths(body.get("deps")):
            if not dep.endswith(".py") and not any(_covers(dep, out) for out in produced):
                problems.append(f"{name}: depends on {dep}, which no stage produces")
    return problems
