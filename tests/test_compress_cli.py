"""``python -m dplc.compress``: bad input, atomic outputs, determinism, the MLflow round trip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
from PIL import Image
from test_bitstream import fitted_entropy, fixed_images, tiny_codec

from dplc import registry
from dplc.bitstream import read_header
from dplc.compress import main
from dplc.files import decompress

REPO = Path(__file__).parents[1]


def save_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array, "L" if array.ndim == 2 else "RGB").save(path)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Input files, a local codec folder 'other', and model 'tiny' registered in a SQLite store."""
    root = tmp_path_factory.mktemp("cli")
    inputs = root / "inputs"
    inputs.mkdir()
    images = fixed_images(3)
    for i, image in enumerate(images):
        save_png(inputs / f"{i}.png", image[..., 0])
    np.save(root / "batch.npy", images[..., 0])
    save_png(root / "rgb.png", np.zeros((28, 28, 3), np.uint8))
    save_png(root / "big.png", np.zeros((40, 40), np.uint8))
    save_png(root / "small.png", np.zeros((20, 20), np.uint8))
    (root / "notes.png").write_text("this is not an image\n")
    (root / "empty.png").write_bytes(b"")
    (root / "empty.dplc").write_bytes(b"")
    (root / "nothing").mkdir()
    for seed, name in ((0, "tiny"), (1, "other")):
        codec = tiny_codec(seed=seed)
        codec.save(root / name)
        fitted_entropy(codec).save(root / name)
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        experiment = mlflow.create_experiment("cli", artifact_location=str(root / "artifacts"))
        with mlflow.start_run(experiment_id=experiment):
            info = registry.log_codec(root / "tiny")
            registry.register(info.model_uri, "tiny", alias="champion")
    good = root / "good.dplc"
    assert main(["compress", str(inputs), "-o", str(good), "--model", str(root / "tiny")]) == 0
    return {"root": root, "uri": uri, "good": good, "images": images}


def run_cli(args: list, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """Run the CLI in-process, assert success, return stdout."""
    code, out, err = run_cli(list(args), capsys)
    assert code == 0, err
    return out


# ----------------------------------------------------------------------- bad input


def bad_file(env: dict, name: str, data: bytes) -> Path:
    path = env["root"] / name
    path.write_bytes(data)
    return path


def _cases(env: dict) -> list[tuple[str, list, str]]:
    root, good = env["root"], env["good"]
    data = good.read_bytes()
    model = ["--model", root / "tiny"]
    return [
        ("missing file", ["compress", root / "absent.png", *model], "absent.png: no such file"),
        ("empty image", ["compress", root / "empty.png", *model], "empty.png: empty file"),
        ("empty .dplc", ["decompress", root / "empty.dplc", *model], "empty file"),
        ("directory", ["decompress", root / "inputs", *model], "is a directory"),
        ("empty directory", ["compress", root / "nothing", *model], "holds no images"),
        ("not an image", ["compress", root / "notes.png", *model], "notes.png: not an image"),
        ("wrong size", ["compress", root / "big.png", *model], "at most 32x32; pass --resize"),
        (
            "mixed sizes",
            ["compress", root / "small.png", root / "inputs" / "0.png", *model],
            "one file holds images of one size",
        ),
        ("wrong mode", ["compress", root / "rgb.png", *model], "image mode RGB"),
        (
            "unknown model URI",
            [
                "compress",
                root / "inputs",
                "--model",
                "models:/nope@champion",
                "--tracking-uri",
                env["uri"],
            ],
            "model not found: models:/nope@champion",
        ),
        (
            "unknown model folder",
            ["compress", root / "inputs", "--model", root / "nowhere"],
            "model not found",
        ),
        ("model mismatch", ["decompress", good, "--model", root / "other"], "model mismatch"),
        (
            "truncated file",
            ["decompress", bad_file(env, "cut.dplc", data[:-9]), *model],
            "truncated",
        ),
        (
            "wrong magic",
            ["decompress", bad_file(env, "magic.dplc", b"RIFF" + data[4:]), *model],
            "not a dplc file",
        ),
        (
            "future version",
            ["decompress", bad_file(env, "future.dplc", data[:4] + b"\x00\x09" + data[6:]), *model],
            "unsupported format version 9",
        ),
        (
            "corrupt file",
            [
                "decompress",
                bad_file(env, "crc.dplc", data[:-6] + bytes([data[-6] ^ 4]) + data[-5:]),
                *model,
            ],
            "CRC mismatch",
        ),
        ("info on garbage", ["info", root / "notes.png"], "not a dplc file"),
        ("bad option", ["compress", root / "inputs", *model, "--bogus"], "unrecognized arguments"),
    ]


def test_bad_input_gives_one_line_exit_2_and_writes_nothing(env, capsys) -> None:
    root = env["root"]
    cases = _cases(env)
    assert len(cases) >= 11
    for label, args, words in cases:
        before = sorted(p.name for p in root.iterdir())
        out_file, out_dir = root / f"out-{len(before)}.dplc", root / f"out-{len(before)}"
        target = out_file if args[0] == "compress" else out_dir
        extra = [] if args[0] == "info" else ["-o", target]
        code, out, err = run_cli([*args, *extra], capsys)
        lines = err.strip().splitlines()
        assert code == 2, (label, code, err)
        assert len(lines) == 1 and lines[0].startswith("error: "), (label, err)
        assert words in lines[0], (label, lines[0])
        assert "Traceback" not in err and out == ""
        assert not target.exists(), label
        assert sorted(p.name for p in root.iterdir()) == before, label  # no temporary leftovers


def test_out_of_range_arguments(env, capsys) -> None:
    args = ["decompress", env["good"], "-o", env["root"] / "o", "--samples", "0"]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--samples must be >= 1" in err
    code, _, err = run_cli(["compress", env["good"], "-o", env["root"], "--model", "x"], capsys)
    assert code == 2 and "is a directory" in err


# --------------------------------------------------------------------- good input


def test_fashion_mnist_geometry_seeds_and_samples(env, capsys, tmp_path: Path) -> None:
    root, good = env["root"], env["good"]
    model = ["--model", root / "tiny"]
    h = read_header(good.read_bytes())
    assert (h.count, h.height, h.width, h.model_name, h.model_version) == (3, 28, 28, "tiny", 0)
    for name in ("a", "b"):
        ok(capsys, "decompress", good, "-o", tmp_path / name, "--seed", 5, *model)
    a = sorted((tmp_path / "a").iterdir())
    assert [p.name for p in a] == ["00000.png", "00001.png", "00002.png"]
    assert [p.read_bytes() for p in a] == [(tmp_path / "b" / p.name).read_bytes() for p in a]
    assert Image.open(a[0]).size == (28, 28) and Image.open(a[0]).mode == "L"
    ok(capsys, "decompress", good, "-o", tmp_path / "k", "--samples", 2, *model)
    s0 = np.asarray(Image.open(tmp_path / "k" / "00001-0.png"))
    s1 = np.asarray(Image.open(tmp_path / "k" / "00001-1.png"))
    assert not np.array_equal(s0, s1)  # the tiny codec is stochastic: seeds S and S+1 differ
    # the default seed is the header's (0): sample 0 equals a plain decode
    ok(capsys, "decompress", good, "-o", tmp_path / "d", *model)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d" / "00001.png")), s0)


def test_conversions_and_fixed_length(env, capsys, tmp_path: Path) -> None:
    root = env["root"]
    model = ["--model", root / "tiny"]
    ok(capsys, "compress", root / "big.png", "-o", tmp_path / "r.dplc", "--resize", *model)
    assert read_header((tmp_path / "r.dplc").read_bytes()).height == 32
    ok(capsys, "compress", root / "rgb.png", "-o", tmp_path / "g.dplc", "--grayscale", *model)
    fixed = tmp_path / "f.dplc"
    out = ok(capsys, "compress", root / "batch.npy", "-o", fixed, "--fixed-length", *model)
    assert "fixed" in out
    h = read_header(fixed.read_bytes())
    assert h.mode == "fixed" and h.payload_length * 8 == 3 * 2 * 16
    info = json.loads(ok(capsys, "info", fixed, "--json"))
    assert info["count"] == 3 and info["fixed_length_bits_per_image"] == 32
    # writing into an existing folder replaces same-named files only
    out_dir = tmp_path / "existing"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("x")
    ok(capsys, "decompress", fixed, "-o", out_dir, *model)
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["00000.png", "00001.png", "00002.png", "keep.txt"]


def test_round_trip_through_the_registry_in_a_subprocess(env, tmp_path: Path) -> None:
    """compress and decompress with ``models:/tiny@champion`` in fresh processes."""
    root = env["root"]
    proc_env = dict(os.environ, PYTHONPATH=str(REPO))
    proc_env.pop("MLFLOW_TRACKING_URI", None)
    out = tmp_path / "reg.dplc"
    cmd = [sys.executable, "-m", "dplc.compress"]
    done = subprocess.run(
        [*cmd, "compress", root / "batch.npy", "-o", out, "--model", "models:/tiny@champion",
         "--tracking-uri", env["uri"], "--seed", "42"],
        cwd=REPO, env=proc_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    h = read_header(out.read_bytes())
    assert (h.model_name, h.model_version, h.seed, h.count) == ("tiny", 1, 42, 3)
    proc_env["MLFLOW_TRACKING_URI"] = env["uri"]  # decompress finds models:/tiny/1 via the env
    done = subprocess.run(
        [*cmd, "decompress", out, "-o", tmp_path / "png"],
        cwd=REPO, env=proc_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no MLflow chatter, no progress bars
    codec = tiny_codec(seed=0)
    expected = decompress(out.read_bytes(), codec, fitted_entropy(codec))
    got = np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / "png").iterdir())])
    assert np.array_equal(got, expected[..., 0])
