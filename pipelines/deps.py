"""The code each DVC stage runs, derived from its imports, checked against ``dvc.yaml``.

DVC reruns a stage only when one of its listed ``deps`` changes, so a stage whose deps miss a
module its command imports serves stale results after a change to that module. This module
reads every stage's command (``python -m pipelines.NAME``), follows the repository imports of
that entry module statically (every ``import``/``from ... import`` in the file, including the
ones inside functions, so lazily imported modules count too), and reports the repository files
a stage's deps do not cover.

    python -m pipelines.deps            # each stage: the files it imports, what dvc.yaml misses
    python -m pipelines.deps --check    # exit 1 when a stage's code deps differ from its imports
    python -m pipelines.deps --write    # rewrite each stage's code deps in dvc.yaml to match

Code deps are listed exactly (not the whole ``dplc/`` folder) so that a change to, say, the
report module reruns the report and nothing upstream of it.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dplc", "pipelines")
_MODULE_FLAG = re.compile(r"-m\s+([\w.]+)")


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The repository file of a dotted module name (``dplc.data`` -> dplc/data.py), or None."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, package: str) -> Iterable[str]:
    """Dotted names a file imports, anywhere in it (a ``from a import b`` yields a and a.b)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the importing package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def import_closure(module: str, root: Path = ROOT) -> set[Path]:
    """Every repository file ``python -m module`` may execute: the transitive imports of the
    module, plus the ``__init__.py`` of each package on the way (Python runs those first)."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # parent packages' __init__ run on import
            init = module_file(".".join(parts[:i]), root)
            if init is not None and init.name == "__init__.py" and init not in seen:
                seen.add(init)
                todo.extend(_imported_modules(init, ".".join(parts[:i])))
        path = module_file(name, root)
        if path is None or path in seen:
            continue
        seen.add(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        todo.extend(m for m in _imported_modules(path, package) if module_file(m, root))
    return seen


def stage_commands(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, tuple[str, list[str]]]:
    """{stage: (entry module, deps)} for every stage of ``dvc.yaml`` (matrix/foreach included:
    all their instances share one command template and one deps list)."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    out: dict[str, tuple[str, list[str]]] = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        match = _MODULE_FLAG.search(str(body.get("cmd", "")))
        if match is None:
            raise ValueError(f"stage {name!r}: command does not run `python -m <module>`")
        deps = [d if isinstance(d, str) else next(iter(d)) for d in body.get("deps", [])]
        out[name] = (match.group(1), deps)
    return out


def covered(path: Path, deps: Iterable[str], root: Path = ROOT) -> bool:
    """Whether a dep names ``path`` or a folder that contains it."""
    rel = path.relative_to(root).as_posix()
    return any(rel == d.rstrip("/") or rel.startswith(d.rstrip("/") + "/") for d in deps)


def _is_code(dep: str) -> bool:
    return dep.split("/")[0] in PACKAGES and dep.endswith(".py")


def code_deps(module: str, root: Path = ROOT) -> list[str]:
    """The sorted repository paths of :func:`import_closure` (what a stage's deps must list)."""
    return sorted(p.relative_to(root).as_posix() for p in import_closure(module, root))


def extra_deps(dvc_yaml: Path = ROOT / "dvc.yaml", root: Path = ROOT) -> dict[str, list[str]]:
    """{stage: code files in its deps that its command never imports} (needless reruns)."""
    extra: dict[str, list[str]] = {}
    for stage, (module, deps) in stage_commands(dvc_yaml).items():
        needless = sorted(set(d for d in deps if _is_code(d)) - set(code_deps(module, root)))
        if needless:
            extra[stage] = needless
    return extra


def write_deps(dvc_yaml: Path = ROOT / "dvc.yaml", root: Path = ROOT) -> None:
    """Replace each stage's ``*.py`` deps under dplc/ and pipelines/ with its import closure,
    in place, keeping every other line (data deps, comments) as it is."""
    lines = dvc_yaml.read_text().splitlines()
    commands = stage_commands(dvc_yaml)
    out: list[str] = []
    stage: str | None = None
    written: set[str] = set()
    for line in lines:
        head = re.match(r"^  ([\w-]+):\s*$", line)
        if head:
            stage = head.group(1)
        item = re.match(r"^(\s+)- ([^\s:]+)\s*$", line)
        if stage in commands and item and _is_code(item.group(2)):
            if stage not in written:  # first code dep of this stage: write the closure
                written.add(stage)
                out += [f"{item.group(1)}- {d}" for d in code_deps(commands[stage][0], root)]
            continue
        out.append(line)
    dvc_yaml.write_text("\n".join(out) + "\n")


def missing_deps(dvc_yaml: Path = ROOT / "dvc.yaml", root: Path = ROOT) -> dict[str, list[str]]:
    """{stage: repository files its command imports that its deps do not cover} (non-empty only)."""
    missing: dict[str, list[str]] = {}
    for stage, (module, deps) in stage_commands(dvc_yaml).items():
        if module_file(module, root) is None:
            raise ValueError(f"stage {stage!r}: entry module {module} is not in the repository")
        lost = sorted(p.relative_to(root).as_posix() for p in import_closure(module, root)
                      if not covered(p, deps, root))  # fmt: skip
        if lost:
            missing[stage] = lost
    return missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 on a missing or needless dep")
    ap.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps")
    args = ap.parse_args(argv)
    if args.write:
        write_deps()
    missing, extra = missing_deps(), extra_deps()
    for stage, (module, _) in stage_commands().items():
        files = code_deps(module)
        print(f"{stage} ({module}): imports {len(files)} repository files")
        for f in files:
            print(f"  {'MISSING ' if f in missing.get(stage, []) else ''}{f}")
        for f in extra.get(stage, []):
            print(f"  NEEDLESS {f}")
    if (missing or extra) and args.check:
        print(f"dvc.yaml: deps differ from imports in {sorted(set(missing) | set(extra))}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
