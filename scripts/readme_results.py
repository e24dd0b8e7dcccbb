"""The README's headline table, rendered from ``reports/bench/results.json``.

    python scripts/readme_results.py --check   # exit 1 when README.md's table is not the JSON's
    python scripts/readme_results.py --write   # rewrite the table between its markers

The README shows the default run's numbers in one table between ``<!-- results:begin -->`` and
``<!-- results:end -->``. Written by hand, it could drift from the run it claims to show; this
renders it from the headline JSON (``python benchmarks/results.py`` makes it from the ``report``
stage's ``reports/results.json``, the seed spread and the costs), so a finished ``dvc repro`` is
followed by those two commands and ``tests/test_readme_results.py`` fails while they disagree.

>>> row = render_row({"bits_per_image": [16.0], "mse_dplc": [0.14691]}, 0, (COLUMNS[0], COLUMNS[2]))
>>> row
'| 16 | 0.147 |'
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages

from dplc.report import fmt  # noqa: E402

README = ROOT / "README.md"
RESULTS = ROOT / "reports" / "bench" / "results.json"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


@dataclass(frozen=True)
class Column:
    """One column: its header and how a rate's cell is made from the results JSON."""

    header: str
    cell: Callable[[dict, int], str]


def _key(key: str, digits: int = 3, positive_only: bool = False) -> Callable[[dict, int], str]:
    """The cell of list ``key`` at a rate's index (blank at rate 0 when ``positive_only``)."""

    def cell(res: dict, i: int) -> str:
        if positive_only and res["bits_per_image"][i] == 0:
            return "–"
        values = res.get(key) or []
        return fmt(values[i] if i < len(values) else None, digits)

    return cell


def _cae_mse(res: dict, i: int) -> str:
    """The CAE's MSE; at rate 0 it decodes the training mean, and says so."""
    text = fmt(res["mse_cae"][i], 3)
    return f"{text} (mean)" if res["bits_per_image"][i] == 0 else text


def _ratio_over_seeds(res: dict, i: int) -> str:
    """MSE_DPLC/MSE_CAE as mean ± s.d. over training seeds, where benchmarks/seeds.py ran."""
    mean = (res.get("mse_ratio_dplc_cae_mean") or [None] * (i + 1))[i]
    sd = (res.get("mse_ratio_dplc_cae_sd") or [None] * (i + 1))[i]
    return "–" if mean is None or sd is None else f"{mean:.3g} ± {sd:.2g}"


COLUMNS: tuple[Column, ...] = (
    Column("bits/image", lambda res, i: f"{res['bits_per_image'][i]:.0f}"),
    Column("bpp", _key("bpp_payload_dplc")),
    Column("MSE DPLC", _key("mse_dplc")),
    Column("MSE CAE", _cae_mse),
    Column("MSE GC", _key("mse_gc")),
    Column("MSE DPLC shared", _key("mse_dplc_shared", positive_only=True)),
    Column("DPLC/CAE", _key("mse_ratio_dplc_cae")),
    Column("DPLC/CAE over seeds", _ratio_over_seeds),
    Column("rFID DPLC", _key("rfid_dplc")),
    Column("rFID CAE", _key("rfid_cae", 4)),
    Column("rFID GC", _key("rfid_gc")),
    Column("PV DPLC", _key("pv_dplc")),
    Column("PV GC", _key("pv_gc", 2)),
    Column("latent MMD DPLC (null s.d.)", _key("latent_mmd_sd_dplc", positive_only=True)),
    Column("final λ_rate", _key("lambda_rate_dplc", positive_only=True)),
    Column("MSE of DPLC's mean decode", _key("mse_mean_decode_dplc")),
)


def render_row(res: dict, i: int, columns: tuple[Column, ...] = COLUMNS) -> str:
    """One Markdown row: rate index ``i`` of the results JSON."""
    return "| " + " | ".join(c.cell(res, i) for c in columns) + " |"


def render(res: dict) -> str:
    """The whole table, header and one row per rate of ``bits_per_image``."""
    head = "| " + " | ".join(c.header for c in COLUMNS) + " |"
    rule = "|" + "---:|" * len(COLUMNS)
    rows = [render_row(res, i) for i in range(len(res["bits_per_image"]))]
    return "\n".join([head, rule, *rows])


def replace_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1 or readme.index(BEGIN) > readme.index(END):
        raise ValueError(f"README.md needs exactly one {BEGIN} … {END} pair, in that order")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 when the README's table differs")
    mode.add_argument("--write", action="store_true", help="rewrite the README's table")
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    wanted = replace_table(text, render(json.loads(args.results.read_text())))
    if args.write:
        args.readme.write_text(wanted)
        return 0
    if wanted != text:
        print(f"{args.readme}: the results table is not {args.results}'s; run "
              "`python scripts/readme_results.py --write`", file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
