"""An upper bound on D_K for the image data: the error of a K-point codebook of training images.

    python benchmarks/codebook_bound.py [--sizes 1024 4096 16384] [--test-images 10000]

D_K, the error of the best K-point quantizer of P_X, is the one-shot quantity in the private-noise
limit: a code J with K = 2^bits values, decoded with private noise to exact realism, has
E‖X − X̂‖² = E Var(X | J) + E‖E[X | J] − X̂‖² ≥ E Var(X | J) + W₂²(law E[X | J], P_X) ≥ 2·D_K,
since E[X | J] takes at most K values (docs/realism.md, "Why the ratio can sit below 2 at 16
bits"). Twice the MSE of a learned code of the same rate is that limit only when the learned
code is optimal.

Any K-point codebook bounds D_K from above. Here: all training images (K = 60,000 ≤ 2^16, so a
bound for every rate from 16 bits up) and random subsets of them of the ``--sizes`` given, each
test image sent to its nearest codeword; MSE per pixel on the [-1, 1] scale at the images' own
size, as the evaluate stage's. Writes ``reports/bench/codebook_bound.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402

OUT = ROOT / "reports" / "bench" / "codebook_bound.json"
CHUNK = 1000


def flat(images) -> torch.Tensor:  # noqa: ANN001
    """uint8 (N, H, W, C) -> float64 (N, H·W·C) on [-1, 1]."""
    return data.to_float(torch.from_numpy(images).permute(0, 3, 1, 2)).flatten(1).double()


def nearest_mse(test: torch.Tensor, codebook: torch.Tensor) -> float:
    """Mean over ``test`` of the per-pixel squared error to the nearest row of ``codebook``.

    >>> nearest_mse(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 1.0]]))
    0.25
    """
    norms = codebook.pow(2).sum(1)
    best = []
    for i in range(0, test.shape[0], CHUNK):
        x = test[i : i + CHUNK]
        best.append((x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.T + norms).min(1).values)
    return float(torch.cat(best).clamp_min(0).mean() / test.shape[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1024, 4096, 16384])
    ap.add_argument("--test-images", type=int, default=10000)
    args = ap.parse_args()
    t0 = time.perf_counter()
    train = flat(data.read_split(L.prepared_dir(), "train").images)
    test = flat(data.read_split(L.prepared_dir(), "test", limit=args.test_images).images)
    rows = [{"codewords": train.shape[0], "codebook": "all training images", "mse": nearest_mse(test, train)}]
    gen = torch.Generator().manual_seed(0)
    for k in args.sizes:
        idx = torch.randperm(train.shape[0], generator=gen)[:k]
        rows.append({"codewords": k, "codebook": "random training images", "mse": nearest_mse(test, train[idx])})
    out = {"test_images": test.shape[0], "rows": rows, "seconds": round(time.perf_counter() - t0, 1),
           "environment": environment.describe()}  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2))
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
