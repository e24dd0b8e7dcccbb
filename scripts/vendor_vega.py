"""Vendor vega, vega-lite and vega-embed for `dvc plots show` without network.

DVC's HTML page loads these three libraries from a CDN; where this project runs there is no
CDN. This script downloads the exact releases DVC's renderer asks for from the npm registry,
checks each tarball against the registry's published SHA-512 (pinned below), keeps each
package's LICENSE under ``.dvc/plots/vendor/<package>/``, and writes
``.dvc/plots/offline.html``: DVC's page with the three libraries inline, which ``.dvc/config``
names as ``plots.html_template``. Run it again only to change versions:

    python scripts/vendor_vega.py
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLOTS = ROOT / ".dvc" / "plots"
PACKAGES = {  # the versions dvc-render's VegaRenderer.SCRIPTS names, with npm's integrity
    "vega": ("5.20.2", "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw=="),
    "vega-lite": ("5.2.0", "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw=="),
    "vega-embed": ("6.18.2", "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg=="),
}  # fmt: skip
REGISTRY = "https://registry.npmjs.org"

PAGE = """<!DOCTYPE html>
<html>
<head>
    {{refresh_tag}}
    <title>DVC Plot</title>
    <!-- vega, vega-lite and vega-embed inline (BSD-3-Clause; licences in .dvc/plots/vendor/):
         this page loads nothing from the network. Made by scripts/vendor_vega.py. -->
{libraries}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def fetch(name: str, version: str, integrity: str) -> tarfile.TarFile:
    url = f"{REGISTRY}/{name}/-/{name}-{version}.tgz"
    blob = urllib.request.urlopen(url, timeout=60).read()
    digest = "sha512-" + base64.b64encode(hashlib.sha512(blob).digest()).decode()
    if digest != integrity:
        raise SystemExit(f"{url}: SHA-512 {digest} is not the pinned {integrity}")
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz")


def main() -> None:
    libraries = []
    for name, (version, integrity) in PACKAGES.items():
        tar = fetch(name, version, integrity)
        out = PLOTS / "vendor" / name
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        for member in (f"package/build/{name}.min.js", "package/LICENSE"):
            f = tar.extractfile(member)
            assert f is not None, member
            files[member] = f.read().decode()
        (out / "LICENSE").write_text(files["package/LICENSE"])
        code = files[f"package/build/{name}.min.js"]
        if "</script" in code.lower():
            raise SystemExit(f"{name}: its code contains '</script' and cannot be inlined")
        libraries.append(f"    <script>/* {name} {version} */\n{code}\n    </script>")
    (PLOTS / "offline.html").write_text(PAGE.format(libraries="\n".join(libraries)))
    print(f"wrote {PLOTS / 'offline.html'}")


if __name__ == "__main__":
    main()
