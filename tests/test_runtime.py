"""dplc.runtime: the torch-free codec agrees with torch, refuses what it cannot serve, needs no torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_bitstream import GOLDEN, fitted_entropy, fixed_images, tiny_codec

from dplc import files, runtime
from dplc.codec import Codec, build_codec
from dplc.compress import main
from dplc.config import NetConfig
from dplc.onnx_export import export_onnx
from dplc.runtime import RuntimeCodec, RuntimeUnavailableError

REPO = Path(__file__).parents[1]


def _cae_mean() -> Codec:
    torch.manual_seed(0)
    codec = build_codec(NetConfig(width=8, latent_dim=16, code_channels=0, noise=False), "mean")
    codec.generator.update(torch.rand(4, 1, 32, 32) * 2 - 1)
    return codec.eval()


CODECS = {
    "map": lambda: tiny_codec(2),
    "map-L4": lambda: tiny_codec(4, levels=4),
    "prior": lambda: tiny_codec(0),
    "mean": _cae_mean,
}


def saved(codec: Codec, d: Path) -> Path:
    codec.save(d)
    fitted_entropy(codec).save(d)
    export_onnx(codec, d)
    return d


@pytest.mark.parametrize("kind", list(CODECS))
def test_runtime_and_torch_agree(kind: str, tmp_path: Path) -> None:
    codec = CODECS[kind]()
    model = fitted_entropy(codec)
    rc = RuntimeCodec(saved(codec, tmp_path))
    images = fixed_images(6)
    for mode in ("ans", "fixed"):
        made_by_torch = files.compress(codec, model, images, "t", 1, seed=3, mode=mode)
        made_by_runtime = runtime.compress(rc, images, "t", 1, seed=3, mode=mode)
        assert made_by_runtime == made_by_torch  # same symbols, same header
    for seed in (None, 8):
        ref = files.decompress(made_by_torch, codec, model, seed=seed).astype(int)
        out = runtime.decompress(made_by_torch, rc, seed=seed).astype(int)
        assert out.shape == images.shape
        assert np.abs(out - ref).max() <= 1
    if kind in ("map", "prior"):  # stochastic: another seed is another decode
        assert not np.array_equal(runtime.decompress(made_by_torch, rc, seed=8),
                                  runtime.decompress(made_by_torch, rc))


def test_stale_or_tampered_exports_are_refused(tmp_path: Path) -> None:
    d = saved(tiny_codec(2), tmp_path / "codec")
    other = tiny_codec(2, seed=1)
    other.save(d)  # new weights, old ONNX graphs
    with pytest.raises(RuntimeUnavailableError, match="other weights"):
        RuntimeCodec(d)
    d2 = saved(tiny_codec(2), tmp_path / "codec2")
    with open(d2 / "decoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(RuntimeUnavailableError, match="SHA-256"):
        RuntimeCodec(d2)


def test_format_1_files_go_to_torch(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = saved(tiny_codec(), tmp_path / "tiny")
    old = GOLDEN / "v1-tiny-ans.dplc"
    with pytest.raises(RuntimeUnavailableError, match="torch"):
        runtime.decompress(old.read_bytes(), RuntimeCodec(d))
    args = ["decompress", str(old), "-o", str(tmp_path / "out"), "--model", str(d)]
    assert main([*args, "--backend", "onnx"]) == 2
    assert "--backend torch" in capsys.readouterr().err
    assert main(args) == 0  # auto: the torch decoder
    assert "(torch)" in capsys.readouterr().out


def test_cli_export_then_decode_with_onnx(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = tmp_path / "tiny"
    codec = tiny_codec()
    codec.save(d)
    fitted_entropy(codec).save(d)
    np.save(tmp_path / "x.npy", fixed_images(3)[..., 0])
    blob = tmp_path / "x.dplc"
    assert main(["compress", str(tmp_path / "x.npy"), "-o", str(blob), "--model", str(d)]) == 0
    def args(out: str, backend: str) -> list[str]:
        return ["decompress", str(blob), "-o", str(tmp_path / out), "--model", str(d),
                "--backend", backend]  # fmt: skip

    assert main(args("o", "onnx")) == 2 and "no ONNX export" in capsys.readouterr().err
    assert main(["export", str(d)]) == 0
    assert main(args("o", "onnx")) == 0 and "(onnx)" in capsys.readouterr().out
    assert main(args("t", "torch")) == 0
    from PIL import Image

    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "o" / f"{i:05d}.png"), dtype=int)
        b = np.asarray(Image.open(tmp_path / "t" / f"{i:05d}.png"), dtype=int)
        assert np.abs(a - b).max() <= 1


def test_a_receiver_without_torch(tmp_path: Path) -> None:
    """With torch made unimportable, the command line compresses and decompresses through ONNX."""
    d = saved(tiny_codec(), tmp_path / "tiny")
    np.save(tmp_path / "x.npy", fixed_images(3)[..., 0])
    script = (
        "import sys; sys.modules['torch'] = None\n"
        "from dplc.compress import main\n"
        f"assert main(['compress', {str(tmp_path / 'x.npy')!r}, '-o', {str(tmp_path / 'x.dplc')!r},"
        f" '--model', {str(d)!r}]) == 0\n"
        f"assert main(['decompress', {str(tmp_path / 'x.dplc')!r}, '-o', {str(tmp_path / 'o')!r},"
        f" '--model', {str(d)!r}]) == 0\n"
        "assert sys.modules['torch'] is None\n"
        "print('no torch', sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'pyarrow')))\n"
    )
    env = os.environ | {"PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "no torch []" in out.stdout
    assert len(list((tmp_path / "o").glob("*.png"))) == 3


def test_auto_takes_torch_for_large_decodes_only(tmp_path: Path) -> None:
    from dplc.opened import TORCH_FROM_IMAGES, _choose_backend

    d = saved(tiny_codec(), tmp_path / "tiny")
    assert _choose_backend("auto", d, 2, images=64) == "onnx"
    assert _choose_backend("auto", d, 2, images=TORCH_FROM_IMAGES) == "torch"
    assert _choose_backend("auto", d, 1, images=64) == "torch"  # format 1: torch's noise
    assert _choose_backend("onnx", d, 2, images=TORCH_FROM_IMAGES) == "onnx"
