"""dvc.yaml's code deps are exactly what each stage's command imports (pipelines/deps.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines import deps

ROOT = Path(__file__).resolve().parents[2]


def test_committed_dvc_yaml_lists_every_imported_module_and_no_other():
    assert deps.missing_deps() == {}
    assert deps.extra_deps() == {}


def test_train_stage_depends_on_the_modules_the_issue_found_missing():
    _, listed = deps.stage_commands()["train"]
    for module in ("dplc/quantize.py", "dplc/config.py", "dplc/train.py", "pipelines/params.py"):
        assert module in listed


def _fake_repo(tmp_path: Path) -> Path:
    """A two-package repository whose entry module imports one module lazily, in a function."""
    for pkg in ("dplc", "pipelines"):
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "dplc" / "a.py").write_text("from dplc import b\n")
    (tmp_path / "dplc" / "b.py").write_text("import numpy\n")
    (tmp_path / "dplc" / "lazy.py").write_text("X = 1\n")
    (tmp_path / "dplc" / "unused.py").write_text("Y = 2\n")
    (tmp_path / "pipelines" / "step.py").write_text(
        "from dplc.a import b\n\ndef main():\n    from dplc import lazy\n    return lazy.X\n"
    )
    return tmp_path


def _dvc_yaml(repo: Path, dep_lines: list[str]) -> Path:
    body = "\n".join(f"      - {d}" for d in dep_lines)
    path = repo / "dvc.yaml"
    path.write_text(f"stages:\n  step:\n    cmd: python -m pipelines.step\n    deps:\n{body}\n"
                    "      - data/prepared\n    outs:\n      - out\n")  # fmt: skip
    return path


def test_closure_follows_lazy_and_transitive_imports(tmp_path):
    repo = _fake_repo(tmp_path)
    got = {p.relative_to(repo).as_posix() for p in deps.import_closure("pipelines.step", repo)}
    assert got == {"pipelines/__init__.py", "pipelines/step.py", "dplc/__init__.py",
                   "dplc/a.py", "dplc/b.py", "dplc/lazy.py"}  # fmt: skip


def test_a_stage_missing_an_imported_module_is_reported(tmp_path):
    repo = _fake_repo(tmp_path)
    path = _dvc_yaml(repo, ["pipelines/step.py", "dplc/a.py", "dplc/b.py"])  # lazy.py missing
    missing = deps.missing_deps(path, repo)
    assert missing["step"] == ["dplc/__init__.py", "dplc/lazy.py", "pipelines/__init__.py"]
    assert deps.extra_deps(path, repo) == {}


def test_a_folder_dep_covers_its_modules_and_a_needless_dep_is_reported(tmp_path):
    repo = _fake_repo(tmp_path)
    path = _dvc_yaml(repo, ["dplc", "pipelines", "dplc/unused.py"])
    assert deps.missing_deps(path, repo) == {}
    assert deps.extra_deps(path, repo) == {"step": ["dplc/unused.py"]}


def test_write_replaces_code_deps_and_keeps_the_rest(tmp_path):
    repo = _fake_repo(tmp_path)
    path = _dvc_yaml(repo, ["dplc/unused.py", "pipelines/step.py"])
    deps.write_deps(path, repo)
    assert deps.missing_deps(path, repo) == {} and deps.extra_deps(path, repo) == {}
    assert "      - data/prepared" in path.read_text()


def test_check_cli_fails_on_the_repository_copy_with_a_dep_removed(tmp_path):
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    text = (tmp_path / "dvc.yaml").read_text()
    broken = text.replace("      - dplc/quantize.py\n", "", 1)
    assert broken != text
    (tmp_path / "dvc.yaml").write_text(broken)
    missing = deps.missing_deps(tmp_path / "dvc.yaml", ROOT)
    assert any("dplc/quantize.py" in files for files in missing.values())


def test_a_command_that_is_not_a_module_is_refused(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages:\n  s:\n    cmd: bash run.sh\n")
    with pytest.raises(ValueError, match="python -m"):
        deps.stage_commands(tmp_path / "dvc.yaml")
