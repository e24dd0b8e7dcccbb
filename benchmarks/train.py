"""Training throughput of the six methods (issue 2 benchmark).

Images/s = images drawn per optimisation step (generator batch + n_critic critic batches) /
seconds per step, after warm-up, for the default 32x32 widths and the paper's 64x64 widths,
in fp32 and under bf16 autocast. When a CUDA device is present the 64x64 rows are measured on
it as well (``*_64px_cuda_images_per_s``, ``*_64px_cuda_bf16_images_per_s``; the batch is
moved to the device and the clock waits for it); otherwise ``cuda`` records that none was.
Prints a table and writes ``reports/bench/train.json``.

    python benchmarks/train.py [--steps 5] [--threads 2] [--out reports/bench/train.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dplc.config import MethodConfig, NetConfig, from_dict, method_defaults
from dplc.method_specs import BY_NAME, METHODS
from dplc.methods import build_method
from dplc.nets import Generator
from dplc.train import images_per_step


def default_profile(params_path: Path, name: str, c: int) -> tuple[NetConfig, MethodConfig]:
    """The net and method settings of the default profile (params.yaml) for ``name`` at C = c."""
    from pipelines import params as P

    cfg = P.train_config(yaml.safe_load(params_path.read_text()), name, c, best={})
    return cfg.net, cfg.method


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(net: NetConfig, cfg: MethodConfig, precision: str, steps: int, device: str = "cpu") -> float:
    """Images per second of ``cfg``'s optimisation step on ``device`` (after one warm-up step)."""
    torch.manual_seed(0)
    dev = torch.device(device)
    data = (torch.rand(2048, *net.image_shape) * 2 - 1).to(dev)
    batch = lambda n: data[torch.randint(0, data.shape[0], (n,)).to(dev)]  # noqa: E731
    gen = (
        Generator(NetConfig(**{**net.__dict__, "code_channels": 0})).eval()
        if cfg.name == "dplc"
        else None
    )
    method = build_method(net, cfg, 1000, precision=precision, generator=gen).to(dev)
    method.step(batch)
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        method.step(batch)
        method.end_step()
    _sync(dev)
    dt = (time.perf_counter() - t0) / steps
    return images_per_step(method) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--steps-64", type=int, default=1)
    ap.add_argument("--steps-cuda", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--out", type=Path, default=Path("reports/bench/train.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    large = {"image_size": 64, "channels": 3, "width": 64, "latent_dim": 128}
    small = {
        k: v
        for k, v in default_profile(args.params, "wpp", 0)[0].__dict__.items()
        if k in ("width", "latent_dim", "critic_width", "levels")
    }
    from pipelines.environment import cpu_model

    cuda = torch.cuda.is_available()
    out: dict = {
        "threads": args.threads,
        "machine": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cuda": torch.cuda.get_device_name(0) if cuda else "no CUDA device: no *_cuda_* rows",
        "torch": torch.__version__,
        "net_32": small,
        "net_64": large,
        "code_channels_rate_methods": 4,
        "note": "images/s = (batch + n_critic x critic batch) per step / s per step; 32px: default profile settings; 64px: the authors' (Tschannen et al. 2018, Sec. 5)",
    }
    print(f"{'method':8s} {'geometry':9s} {'precision':9s} {'images/s':>10s}")
    for name in METHODS:
        c = 4 if BY_NAME[name].per_rate else 0
        net32, cfg = default_profile(args.params, name, c)
        cfg64 = from_dict(MethodConfig, method_defaults(name))
        net64 = from_dict(NetConfig, large | {"code_channels": c, "noise": BY_NAME[name].decoder_noise})
        out[f"{name}_batch_size"] = cfg.batch_size
        out[f"{name}_n_critic"] = cfg.n_critic if BY_NAME[name].critic else 0
        for geom, net, steps, mcfg in (
            ("32", net32, args.steps, cfg),
            ("64", net64, args.steps_64, cfg64),
        ):
            for precision in ("fp32", "bf16"):
                ips = measure(net, mcfg, precision, steps)
                key = f"{name}{'_64px' if geom == '64' else ''}{'_bf16' if precision == 'bf16' else ''}_images_per_s"
                out[key] = round(ips, 1)
                print(f"{name:8s} {geom + 'x' + geom:9s} {precision:9s} {ips:10.1f}", flush=True)
        for precision in ("fp32", "bf16") if cuda else ():
            ips = measure(net64, cfg64, precision, args.steps_cuda, "cuda")
            out[f"{name}_64px_cuda{'_bf16' if precision == 'bf16' else ''}_images_per_s"] = round(ips, 1)
            print(f"{name:8s} {'64x64':9s} {precision + ' cuda':9s} {ips:10.1f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
