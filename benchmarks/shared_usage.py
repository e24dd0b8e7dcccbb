"""How much dplc_shared's encoder uses the shared noise, per rate of the default profile.

    python benchmarks/shared_usage.py [--images 2000]

For each trained ``runs/train/dplc_shared_wpp/<C>/codec`` and the test images: the fraction of
code symbols (and of images with any symbol) that change when the encoder reads another draw
of u; the MSE of decoding with the u the encoder read, with another u (the wrong-noise decode:
a code that uses u must decode worse with the wrong one), and DPLC's MSE on the same images
for reference; and the bits per latent dimension the rate gives (C·16·log2 L / m), where the
Gaussian study locates the gain of shared randomness (≤ 2 bits per component). Writes
``reports/bench/shared_usage.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402

OUT = ROOT / "reports" / "bench" / "shared_usage.json"


def usage(shared: Codec, private: Codec, x: torch.Tensor) -> dict[str, float]:
    """Code changes under another u, and MSE with the right u, a wrong u and DPLC's codec."""
    n = x.shape[0]
    u1, u2 = shared.shared_noise(1, n), shared.shared_noise(2, n)
    s1, s2 = shared.encode(x, noise=u1), shared.encode(x, noise=u2)
    right = shared.decode(s1, noise=u1)
    wrong = shared.decode(s1, noise=u2)
    dplc = private.decode(private.encode(x), seed=1)  # its own noise (a dither codec's has more)
    mse = lambda a: float((a - x).pow(2).mean())  # noqa: E731
    return {
        "mode": shared.mode,
        "symbols_changed_by_another_u": float(np.mean(s1 != s2)),
        "images_with_a_changed_code": float(np.mean((s1 != s2).reshape(n, -1).any(1))),
        "mse_right_u": mse(right),
        "mse_wrong_u": mse(wrong),
        "mse_dplc_same_images": mse(dplc),
        "bits_per_latent_dim": shared.bits_per_image / shared.net.latent_dim,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    args = ap.parse_args()
    torch.set_num_threads(2)
    test = data.read_split(L.prepared_dir(), "test", limit=args.images).images
    out: dict = {"images": int(test.shape[0]), "per_rate": {}}
    for folder in sorted(L.train_root().glob("dplc_shared_wpp/*/codec"), key=lambda p: int(p.parent.name)):
        c = int(folder.parent.name)
        shared, private = Codec.load(folder), Codec.load(L.codec_dir("dplc_wpp", c))
        x = data.to_float(data.to_tensor(test, shared.net.image_size))
        with torch.no_grad():
            out["per_rate"][str(c)] = row = usage(shared, private, x)
        print(f"C={c}: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in row.items()), flush=True)  # fmt: skip
    out["environment"] = environment.describe()
    OUT.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
