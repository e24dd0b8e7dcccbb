"""How wide are the decodes? The total pixel variance of codecs' decodes against the test images'.

    python benchmarks/decode_variance.py CODEC_DIR [CODEC_DIR ...] [--test-images 10000] [--draws 4]

Realism asks X̂ ~ P_X, so in particular Var(X̂) = Var(X) (here: the per-pixel variance over
images, averaged over the 28×28 pixels, on the [-1, 1] scale, after rounding to 8 bits as a
file's decode is). With a code J and private noise, Var(X̂) = Var(E[X̂ | J]) + E Var(X̂ | J),
the second term being the paper's PV. Decodes narrower than the data would be a realism
shortfall that the latent MMD and a feature-space FID need not see, and one way for DPLC to sit
below twice the MSE of a learned code of its rate (the limit itself is 2·D_K: docs/realism.md,
"Why the ratio can sit below 2 at 16 bits"); this benchmark measures how wide they are.

Each CODEC_DIR is a saved codec (``runs/train/<codec>/<C>/codec``, ``runs/seeds/...``,
``runs/generator/wpp/codec`` for G*'s samples). Every test image is decoded ``--draws`` times
with independent noise (a codec without noise: once); reported per codec: ``var_decodes`` (over
all images and draws), ``var_decodes_over_data``, ``pv`` (the mean over images of the variance
over draws, unbiased) and ``var_mean_decode`` (the variance over images of the mean over draws),
and the MSE of one draw. G*'s codec (mode ``prior``) decodes to its samples G(z), so it scores
G*'s own width. Appends one JSON line per codec to ``reports/bench/decode_variance.jsonl``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import jsonl  # noqa: E402
from dplc import data  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "decode_variance.jsonl"
BATCH = 500


def pixel_variance(x: torch.Tensor) -> float:
    """Per-pixel variance over the first axis (unbiased), averaged over the pixels."""
    return float(x.double().var(dim=0).mean())


def as_file_decode(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A decode as a file holds it: rounded to 8 bits, cropped to the images' own size."""
    return data.crop_to(data.to_float(data.to_uint8(x)), h, w)


@torch.no_grad()
def decodes(codec: Codec, images: torch.Tensor, draws: int, seed: int = 0) -> torch.Tensor:
    """(draws, N, C, h, w) decodes of the padded float ``images``, noise drawn per batch."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(draws):
        parts = []
        for i in range(0, images.shape[0], BATCH):
            x = images[i : i + BATCH]
            parts.append(codec.reconstruct(x, codec.draw_noise(x.shape[0], gen)))
        out.append(torch.cat(parts))
    return torch.stack(out)


def measure(codec_dir: Path, test: torch.Tensor, h: int, w: int, draws: int) -> dict:
    """The figures of one codec on the padded float ``test`` images."""
    codec = Codec.load(codec_dir)
    codec.eval()
    x = data.crop_to(test, h, w)
    x_hat = as_file_decode(decodes(codec, test, draws if codec.stochastic else 1), h, w)
    row = {
        "codec": str(codec_dir),
        "mode": codec.mode,
        "bits_per_image": codec.net.bits_per_image,
        "var_data": pixel_variance(x),
        "var_decodes": pixel_variance(x_hat.flatten(0, 1)),
        "mse": float((x_hat[0].double() - x.double()).pow(2).mean()),
        "draws": int(x_hat.shape[0]),
    }
    row["var_decodes_over_data"] = row["var_decodes"] / row["var_data"]
    if x_hat.shape[0] > 1:
        row["pv"] = float(x_hat.double().var(dim=0).mean())
        row["var_mean_decode"] = pixel_variance(x_hat.double().mean(0))
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("codecs", nargs="+", type=Path)
    ap.add_argument("--test-images", type=int, default=10000)
    ap.add_argument("--draws", type=int, default=4)
    args = ap.parse_args()
    params = P.load()
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    raw = data.read_split(L.prepared_dir(), "test", limit=args.test_images).images
    _, h, w, _ = raw.shape
    test = data.to_float(data.to_tensor(raw, int(params["data"]["image_size"])))
    for codec_dir in args.codecs:
        jsonl.append(OUT, measure(codec_dir, test, h, w, args.draws))


if __name__ == "__main__":
    main()
