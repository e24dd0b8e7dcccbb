"""Per-rate codecs trained on from the train stage's codecs: ``dplc_shared`` started from DPLC's
codec of the same rate, and, as controls, DPLC and the CAE started from their own.

    python benchmarks/shared_warm.py [--rates 64] [--method dplc_shared|dplc|cae] [--lr-scale 0.16]
                                     [--steps N] [--test-images 10000]

The shared codec's family holds the private one: with its encoder's noise head at zero (where
it starts anyway, :class:`dplc.nets.Encoder`) and zero weights on B's noise inputs, E(x, u) and
B(code, u) ignore u. ``dplc_shared`` (the default) starts exactly there, from the stage's DPLC
codec (:func:`warm_start`), and shows whether training then finds a use for u, keeps DPLC's
solution, or leaves it. ``dplc`` and ``cae`` start from their own stage codec, so what the
shared codec gains can be told from what the extra steps give. Each then trains with the train
stage's own config for that method and rate (same seed and batches, realism constraint) except:
no free phase (the start replaces it), the shared stage's step count unless ``--steps`` is
given, and the learning rate times ``--lr-scale`` (0.16 is where the stage's two decays leave
it), in this process (no Ray). It is evaluated on the test split like the evaluate stage,
beside the stage's codecs of that rate.

Codecs are kept under ``runs/shared_warm/`` (a finished one is reused); one JSON line per rate
is appended to ``reports/bench/shared_warm.jsonl`` with the environment. Findings:
docs/realism.md, "Trained on at the final learning rate, the dual restarted" and "The shared
codec started from DPLC's codec".
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import jsonl  # noqa: E402
from benchmarks.seeds import (  # noqa: E402
    GENERATOR,
    evaluate,
    fit_and_save,
    generator_of,
    is_trained,
    stage_codec,
)
from dplc import data  # noqa: E402
from dplc.codec import Codec  # noqa: E402
from dplc.method_specs import BY_NAME  # noqa: E402
from dplc.train import setup  # noqa: E402
from pipelines import layout as L  # noqa: E402
from pipelines import params as P  # noqa: E402

OUT = ROOT / "reports" / "bench" / "shared_warm.jsonl"
WORK = L.RUNS / "shared_warm"
FIELDS = ("mse", "mse_mean_decode", "pv", "rfid_featnet", "latent_mmd_sd")
METHOD, PRIVATE = "dplc_shared", "dplc"
STAGE_NAMES = {
    PRIVATE: "private",
    METHOD: "shared",
    "cae": "cae",
}  # the rows' keys for the stage's codecs


def warm_start(shared: Codec, private: Codec, frozen_generator: bool = True) -> None:
    """Load ``private``'s E and B into ``shared`` so that it decodes as ``private`` whatever u is.

    Weights of the same shape are copied; B's first layer, which reads [code, u] on its input
    axis (:class:`dplc.nets.StochasticMap`), gets the private codec's code rows and zero rows for
    u; the encoder's noise head, absent from the private codec, keeps its zeros. G* is shared
    (``frozen_generator``); a CAE's own decoder is copied too.
    """
    own, theirs = shared.state_dict(), private.state_dict()
    for key, value in theirs.items():
        if key.startswith("generator.") and frozen_generator:
            continue
        if own[key].shape == value.shape:
            own[key] = value.clone()
        elif own[key].ndim == value.ndim and own[key].shape[1:] == value.shape[1:]:
            grown = torch.zeros_like(own[key])
            grown[: value.shape[0]] = value
            own[key] = grown
        else:
            raise ValueError(
                f"{key}: shapes {tuple(value.shape)} and {tuple(own[key].shape)} do not nest"
            )
    shared.load_state_dict(own)


def train_warm(
    params: dict,
    method: str,
    rate: int,
    images: torch.Tensor,
    steps: int | None,
    lr_scale: float = 1.0,
) -> Path:
    """``method`` at ``rate`` started from the stage's private codec (:func:`warm_start`) and
    trained with the stage's config for ``method`` (``steps`` replaced when given, else the
    shared stage's; the learning rate times ``lr_scale``; no free phase, since the start replaces
    it); its codec dir. ``dplc`` is the control: the private codec trained on the same way."""
    cfg = P.train_config(params, method, rate, generator=generator_of(method))
    steps = (
        P.train_config(params, METHOD, rate, generator=GENERATOR).loop.steps
        if steps is None
        else steps
    )
    out = WORK / (f"{method}-c{rate}-n{steps}" + (f"-lr{lr_scale:g}" if lr_scale != 1.0 else ""))
    if is_trained(out / "codec"):
        return out / "codec"
    cfg = dataclasses.replace(
        cfg,
        method=dataclasses.replace(cfg.method, lr=cfg.method.lr * lr_scale, free_fraction=0.0),
        loop=dataclasses.replace(
            cfg.loop, steps=steps, label=f"{method} warm C={rate} lr x{lr_scale:g}"
        ),
    )
    g_star = Codec.load(L.generator_codec(GENERATOR)).generator if generator_of(method) else None
    trained, batches = setup(cfg, images, g_star)
    start = PRIVATE if BY_NAME[method].into_generator else method  # the CAE: from its own codec
    warm_start(
        trained.codec, Codec.load(stage_codec(params, start, rate)), BY_NAME[method].into_generator
    )
    return fit_and_save(cfg, trained, batches, images, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[64], help="code channels C")
    ap.add_argument(
        "--method",
        default=METHOD,
        choices=[METHOD, PRIVATE, "cae"],
        help="dplc (cae): the control, the private codec (the CAE) trained on from itself",
    )
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the stage's)")
    ap.add_argument(
        "--lr-scale",
        type=float,
        default=1.0,
        help="the stage's learning rate times this (0.16: where the private codec's two decays end)",
    )
    ap.add_argument("--test-images", type=int, default=10000)
    args = ap.parse_args()
    params = P.load()
    torch.set_num_threads(int(params["ray"]["threads_per_worker"]))
    split = data.read_split(L.prepared_dir(), "train", limit=params["data"].get("train_limit"))
    images = data.to_tensor(split.images, int(params["data"]["image_size"]))
    test = data.read_split(L.prepared_dir(), "test", limit=args.test_images).images
    for rate in args.rates:
        t0 = time.perf_counter()
        codec_dir = train_warm(params, args.method, rate, images, args.steps, args.lr_scale)
        seconds = time.perf_counter() - t0
        row: dict = {"method": args.method, "rate": rate, "bits_per_image": P.net_config(params, rate).bits_per_image,
                     "steps": args.steps, "lr_scale": args.lr_scale, "train_s": round(seconds, 1)}  # fmt: skip
        beside = {METHOD: (PRIVATE, METHOD), PRIVATE: (PRIVATE,), "cae": ("cae",)}[args.method]
        for name, where in [("warm", codec_dir)] + [(f"stage_{STAGE_NAMES[b]}", stage_codec(params, b, rate))
                                                    for b in beside]:  # fmt: skip
            m = evaluate(where, test, params)
            row[name] = {k: m.get(k) for k in FIELDS} | {
                "lambda_rate": Codec.load(where).meta.get("lambda_rate")
            }
            print(f"C={rate} {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in row[name].items() if v is not None),
                  flush=True)  # fmt: skip
        jsonl.append(OUT, row)


if __name__ == "__main__":
    main()
