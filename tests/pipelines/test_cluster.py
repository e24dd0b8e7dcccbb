"""pipelines/cluster.yaml is a valid Ray cluster definition naming an existing entry point."""

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "pipelines" / "cluster.yaml"


def test_cluster_yaml_validates_against_ray_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load(CLUSTER.read_text())
    validate_config(prepare_config(config))  # Ray's own schema check; raises on a violation
    types = config["available_node_types"]
    assert config["head_node_type"] in types
    gpu = [n for n, t in types.items() if n != config["head_node_type"]]
    assert gpu and types[gpu[0]]["max_workers"] >= 1
    assert any("pip install" in c and ".[pipeline" in c for c in config["setup_commands"])


def test_cluster_yaml_names_an_existing_entry_point():
    text = CLUSTER.read_text()
    line = next(ln for ln in text.splitlines() if "ray submit" in ln and ".py" in ln)
    script = next(tok for tok in line.split() if tok.endswith(".py"))
    assert (ROOT / script).is_file(), script
    out = subprocess.run(
        [sys.executable, script, "--dry-run", "--profile", "celeba64", "--workers", "4", "--gpu"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "pipelines.profile celeba64" in out.stdout and "dvc repro" in out.stdout
    assert "ray.use_gpu=true" in out.stdout
