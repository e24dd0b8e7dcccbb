"""`dvc plots show` renders offline: the vendored template carries vega, vega-lite, vega-embed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from _browser import dump_dom

REPO = Path(__file__).parents[2]
TEMPLATE = REPO / ".dvc" / "plots" / "offline.html"


def test_template_is_wired_and_self_contained() -> None:
    assert "html_template = plots/offline.html" in (REPO / ".dvc" / "config").read_text()
    page = TEMPLATE.read_text()
    assert "{plot_divs}" in page
    for name in ("vega", "vega-lite", "vega-embed"):
        assert f"/* {name} " in page  # the library's code, inline
        assert (REPO / ".dvc" / "plots" / "vendor" / name / "LICENSE").is_file()
    assert not re.search(r"<script[^>]+src=", page)  # nothing loaded from anywhere


def test_dvc_plots_show_renders_in_a_browser_without_network(tmp_path: Path) -> None:
    out = tmp_path / "plots"
    subprocess.run(["dvc", "plots", "show", "-o", str(out)], cwd=REPO, check=True,
                   capture_output=True, text=True, timeout=300)  # fmt: skip
    page = (out / "index.html").read_text()
    assert not re.search(r"<script[^>]+src=", page) and "cdn.jsdelivr" not in page
    vega_plots = page.count("vegaEmbed('#")
    assert vega_plots >= 3
    dom = dump_dom((out / "index.html").as_uri())
    assert dom.count("<canvas") >= vega_plots  # every vega plot drew itself
    # the check has power: the same page without the inline vega-embed draws nothing
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"<script>/\* vega-embed .*?</script>", "", page, flags=re.S))
    assert dump_dom(broken.as_uri()).count("<canvas") == 0
