"""Compose params.yaml from conf/ for a profile, exactly as `dvc exp run -S profile=NAME` does.

    python -m pipelines.profile quick          # then: dvc repro
    python -m pipelines.profile default -S tune.num_samples=4

DVC's own Hydra composition (``dvc.utils.hydra.compose_and_dump``) does the work, so the file is
identical to the one `dvc exp run` writes; this entry point exists for plain `dvc repro` runs
and for tests that work in a copy of the repo without git history.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dvc.utils.hydra import compose_and_dump

from pipelines.params import PARAMS, ROOT

PROFILES = sorted(p.stem for p in (ROOT / "conf" / "profile").glob("*.yaml"))


def compose(
    profile: str, overrides: list[str] | None = None, output: Path = PARAMS, root: Path = ROOT
) -> Path:
    """Write ``output`` from ``root/conf`` with the given profile and Hydra overrides."""
    if profile not in PROFILES:
        raise SystemExit(f"unknown profile {profile!r}; choose one of {PROFILES}")
    compose_and_dump(
        output,
        str(root / "conf"),
        None,
        "config",
        str(root),
        [f"profile={profile}", *(overrides or [])],
    )
    return output


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", choices=PROFILES)
    ap.add_argument("-S", "--set", action="append", default=[], help="Hydra override key=value")
    ap.add_argument("-o", "--output", type=Path, default=PARAMS)
    args = ap.parse_args()
    print(f"wrote {compose(args.profile, args.set, args.output)} (profile {args.profile})")


if __name__ == "__main__":
    main()
