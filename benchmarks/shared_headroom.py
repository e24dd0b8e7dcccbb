"""What knowing the decoder's noise could buy with the trained decoder: codes searched under u.

    python benchmarks/shared_headroom.py [--rates 1 4] [--images 1000] [--draws 4]

For the train stage's private DPLC codec at code channels C (its E, B and G*, in eval mode as
it decodes), each test image's code is improved by greedy one-bit search: from E's code, flip
the one bit that lowers the error most, until no flip does (coordinate descent, at most C·16
rounds). Two searches, both decoded under the decoder's own draw u:

- ``shared``: the error |x − G*(B(v, u))|² under that very u (an encoder that knows u, as the
  file's shared seed lets it);
- ``private``: the error averaged over ``--draws`` other draws of u (an encoder that does not
  know u; the expected error, as the Gaussian stage's private nearest-neighbour term).

The MSE of E's own code, of the private search and of the shared search, and the gap between
the last two, say what knowing u is worth with this B and G* to an encoder that finds such
codes, apart from whether a trained encoder learns to (``benchmarks/shared_usage.py`` measures
what ``dplc_shared``'s encoder does). The latent MMD (null s.d., one reading on these images)
of each code's latents B(v, u) says whether the searched codes stay realistic. Writes
``reports/bench/shared_headroom.json`` with the machine and package versions.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dplc import data, realism  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from pipelines import environment  # noqa: E402
from pipelines import layout as L  # noqa: E402

OUT = ROOT / "reports" / "bench" / "shared_headroom.json"


def flips(v: Tensor) -> Tensor:
    """(n, k) codes at ±0.5 -> (n, k + 1, k): each code, then its k one-bit flips."""
    n, k = v.shape
    cand = v.unsqueeze(1).repeat(1, k + 1, 1)
    idx = torch.arange(k)
    cand[:, idx + 1, idx] = -cand[:, idx + 1, idx]
    return cand


def greedy(v: Tensor, error: Callable[[Tensor], Tensor]) -> tuple[Tensor, int]:
    """Coordinate descent over one-bit flips: ``error`` maps (n, k + 1, k) candidates to their
    (n, k + 1) errors; each round every code moves to its best flip while one lowers the error.
    Returns the codes and the rounds run."""
    v = v.clone()
    for rounds in range(1, v.shape[1] + 1):
        err = error(flips(v))
        best = err.argmin(1)
        moved = best > 0
        if not bool(moved.any()):
            return v, rounds
        rows = torch.nonzero(moved).squeeze(1)
        v[rows, best[rows] - 1] = -v[rows, best[rows] - 1]
    return v, v.shape[1]


def decode_error(codec: Codec, x: Tensor, noises: list[Tensor]) -> Callable[[Tensor], Tensor]:
    """Candidates (n, m, k) -> their squared error per image, averaged over ``noises``."""
    shape = codec.net.code_shape

    def error(cand: Tensor) -> Tensor:
        n, m, k = cand.shape
        flat = cand.reshape(n * m, *shape)
        total = torch.zeros(n, m, dtype=torch.float64)
        for u in noises:
            out = codec.generator(codec.latent(flat, u.repeat_interleave(m, 0)))
            total += (out - x.repeat_interleave(m, 0)).pow(2).flatten(1).sum(1).view(n, m).double()
        return total / len(noises)

    return error


def headroom(codec: Codec, x: Tensor, draws: int, chunk: int) -> dict[str, float]:
    """E's code, the private search and the shared search (the module's doc) on ``x``, chunk by
    chunk; MSE per pixel and one latent reading each."""
    gen = torch.Generator().manual_seed(0)
    codes: dict[str, list[Tensor]] = {"encoder": [], "private": [], "shared": []}
    latents: dict[str, list[Tensor]] = {key: [] for key in codes}
    errs: dict[str, float] = dict.fromkeys(codes, 0.0)
    rounds = {"private": 0, "shared": 0}
    for xs in x.split(chunk):
        u = codec.draw_noise(xs.shape[0], gen)
        others = [codec.draw_noise(xs.shape[0], gen) for _ in range(draws)]
        v0 = codec.code(xs, u).reshape(xs.shape[0], -1)
        found = {"encoder": v0}
        found["private"], r_p = greedy(v0, decode_error(codec, xs, others))
        found["shared"], r_s = greedy(v0, decode_error(codec, xs, [u]))
        rounds["private"], rounds["shared"] = max(rounds["private"], r_p), max(rounds["shared"], r_s)
        for key, v in found.items():
            z = codec.latent(v.reshape(xs.shape[0], *codec.net.code_shape), u)
            errs[key] += float((codec.generator(z) - xs).pow(2).sum())
            codes[key].append(v)
            latents[key].append(z)
    null = realism.mmd_null(x.shape[0], codec.net.latent_dim, seed=0)
    out: dict[str, float] = {}
    for key in codes:
        out[f"mse_{key}"] = errs[key] / x.numel()
        out[f"latent_mmd_sd_{key}"] = realism.latent_mmd_sd(torch.cat(latents[key]), null, seed=1)
    priv, shar = torch.cat(codes["private"]), torch.cat(codes["shared"])
    out["bits_differing_shared_private"] = float((priv != shar).float().mean())
    out["images_differing_shared_private"] = float((priv != shar).any(1).float().mean())
    out["shared_over_private"] = out["mse_shared"] / out["mse_private"]
    out["rounds_private"], out["rounds_shared"] = rounds["private"], rounds["shared"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[1, 4], help="code channels C")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=4, help="draws of u the private search averages")
    ap.add_argument("--chunk", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(2)
    test = data.read_split(L.prepared_dir(), "test", limit=args.images).images
    out: dict = {"per_rate": json.loads(OUT.read_text()).get("per_rate", {}) if OUT.exists() else {}}
    for c in args.rates:
        codec = Codec.load(L.codec_dir("dplc_wpp", c)).eval()
        if codec.quantizer.levels != 2:
            raise SystemExit("the search flips bits: it needs a codec with 2 levels")
        x = data.to_float(data.to_tensor(test, codec.net.image_size))
        t0 = time.perf_counter()
        with torch.no_grad():
            row = headroom(codec, x, args.draws, args.chunk)
        row |= {"bits": codec.bits_per_image, "images": int(x.shape[0]), "draws": args.draws,
                "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        out["per_rate"][str(c)] = row
        print(f"C={c}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
    out["environment"] = environment.describe()
    OUT.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
