"""DVC stage `figures`: test images decoded at every rate, the picture of the paper's Figure 2.

Rows, for each of a few test images: DPLC decoded with three noise seeds, then GC and CAE;
columns: the original, every rate of the ladder (bits per image), and the classical codec whose
operating point is closest in bits to the highest learned rate. Every decode goes through a
``.dplc`` file (:mod:`dplc.files`), as a user's would. Writes ``<report_dir>/decodes.png`` and
logs it to MLflow.

    python -m pipelines.figures
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from dplc import classical, data
from dplc.bundle import CodecBundle
from pipelines import layout as L
from pipelines import params as P
from pipelines import tracking

DRAWS = 3
"""DPLC decodes per image (noise seeds 0, 1, 2)."""
IMAGES = (0, 1)
"""Indices of the test images shown."""


def learned_rows(params: dict, test: np.ndarray) -> list[tuple[str, list[np.ndarray]]]:
    """(row label, decodes per rate) for DPLC's draws, GC and CAE: each codec compresses the
    images once, and each DPLC row decodes that file with its own noise seed."""
    ladder = [int(c) for c in params["ladder"]]
    rows = [(f"{P.codec_name('dplc', g)} seed {s}", P.codec_name("dplc", g), s)
            for g in params["generators"] for s in range(DRAWS)] + [("gc", "gc", 0), ("cae", "cae", 0)]  # fmt: skip
    decodes: dict[str, list[np.ndarray]] = {label: [] for label, _, _ in rows}
    for c in ladder:
        for name in dict.fromkeys(name for _, name, _ in rows):
            bundle = CodecBundle.load(L.codec_dir(name, c), name=name)
            blob = bundle.compress(test)
            for label, _, seed in (r for r in rows if r[1] == name):
                decodes[label].append(bundle.decompress(blob, seed=seed))
    return list(decodes.items())


def closest_classical(sweep: dict, bits: float) -> tuple[str, float, float]:
    """(codec, quality, bits per image) of the classical point closest to ``bits`` in log-bits."""
    best = min(((name, p["quality"], p["bits_file"]) for name, points in sweep["codecs"].items()
                for p in points), key=lambda t: abs(math.log(t[2]) - math.log(bits)))  # fmt: skip
    return best


def draw(params: dict, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    test = data.read_split(L.prepared_dir(), "test", limit=max(IMAGES) + 1).images[list(IMAGES)]
    rows = learned_rows(params, test)
    net = P.net_config(params)
    top_bits = max(int(c) for c in params["ladder"]) * 16 * math.log2(net.levels)
    sweep = json.loads(L.classical_file().read_text())
    name, quality, bits = closest_classical(sweep, top_bits)
    classic = classical.code_images(name, test, int(quality))[0]
    rates = [f"{int(c) * 16 * math.log2(net.levels):g} bits" for c in params["ladder"]]
    cols = ["original", *rates, f"{name} q{quality:g}\n{bits:.0f} bits"]
    n_rows = len(IMAGES) * len(rows)
    fig, axes = plt.subplots(n_rows, len(cols), figsize=(1.1 * len(cols) + 1.2, 1.1 * n_rows),
                             dpi=110, squeeze=False)  # fmt: skip
    for i in range(len(IMAGES)):
        for r, (label, decodes) in enumerate(rows):
            row = axes[i * len(rows) + r]
            tiles = [test[i], *(d[i] for d in decodes), classic[i]]
            for j, (ax, tile) in enumerate(zip(row, tiles, strict=True)):
                shown = r == 0 or 0 < j < len(cols) - 1  # original/classical once per image
                if shown:
                    ax.imshow(tile[..., 0] if tile.shape[-1] == 1 else tile, cmap="gray",
                              vmin=0, vmax=255)  # fmt: skip
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(shown)
                if i == 0 and r == 0:
                    ax.set_title(cols[j], fontsize=7)
            row[0].set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.suptitle("Test images decoded from .dplc files: DPLC with three noise seeds, GC, CAE",
                 fontsize=8)  # fmt: skip
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def main() -> None:
    params = P.load()
    tracking.check_store(params)
    out = draw(params, P.report_dir(params) / "decodes.png")
    with tracking.stage_run(params, "figures") as run:
        run.log_artifact(out, "report")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
