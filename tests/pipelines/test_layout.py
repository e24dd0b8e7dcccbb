"""The run folders: dvc.yaml declares what each stage writes, and every data dep is produced."""

from __future__ import annotations

import copy

import pytest
import yaml

from pipelines import layout as L


@pytest.fixture(scope="module")
def dvc() -> dict:
    return yaml.safe_load((L.ROOT / "dvc.yaml").read_text())


def test_committed_dvc_yaml_agrees_with_the_layout(dvc):
    assert L.check(dvc) == []


def test_an_out_that_differs_from_the_layout_is_reported(dvc):
    broken = copy.deepcopy(dvc)
    broken["stages"]["featnet"]["outs"] = ["runs/featnet/weights.safetensors"]
    problems = L.check(broken)
    assert problems[0].startswith("featnet: dvc.yaml declares"), problems
    # ...and the stages that read the weights under their real name now read nothing
    assert "evaluate: depends on runs/featnet/featnet.safetensors, which no stage produces" in problems


def test_a_dep_no_stage_produces_is_reported(dvc):
    broken = copy.deepcopy(dvc)
    broken["stages"]["report"]["deps"].append("runs/evaluation")
    assert L.check(broken) == ["report: depends on runs/evaluation, which no stage produces"]


def test_removing_a_producer_orphans_its_consumers(dvc):
    broken = copy.deepcopy(dvc)
    del broken["stages"]["tune"]
    problems = L.check(broken)
    assert "train: depends on runs/tune/best.yaml, which no stage produces" in problems


def test_paths_are_built_by_the_layout():
    assert L.codec_dir("cae", 4) == L.ROOT / "runs" / "train" / "cae" / "4" / "codec"
    assert L.eval_file(0).name == "c0.json" and L.tuned_file().parent == L.tune_dir()
