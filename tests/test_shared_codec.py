"""dplc_shared on images: the encoder sees the decoder's noise (``shared``: E(x, u); ``dither``:
subtractive dither), and the file says so."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from _tiny import fixed_batch, tiny_method, tiny_net

from dplc import bitstream, files, noise
from dplc.codec import Codec, CodecInputError, build_codec
from dplc.entropy import EntropyModel
from dplc.methods import build_method
from dplc.nets import Generator
from dplc.pixels import pad_to, to_float


def _pair(c: int = 2) -> tuple[Codec, Codec]:
    """A private-noise codec and a shared-noise one built from the same seed."""
    net = tiny_net(code_channels=c)
    torch.manual_seed(0)
    private = build_codec(net, "map").eval()
    torch.manual_seed(0)
    shared = build_codec(net, "shared").eval()
    return private, shared


def _images(n: int = 6, seed: int = 3) -> np.ndarray:
    x = ((fixed_batch(n, seed=seed) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(x[:, :, 2:30, 2:30].permute(0, 2, 3, 1).numpy())


def test_a_fresh_shared_codec_is_its_private_twin_with_u_zeroed_at_the_encoder():
    private, shared = _pair()
    common = {k: v for k, v in shared.state_dict().items() if "noise_head" not in k}
    assert all(torch.equal(v, private.state_dict()[k]) for k, v in common.items())
    assert set(shared.state_dict()) - set(private.state_dict()) == {"encoder.noise_head.weight"}
    x = fixed_batch(16, seed=1)
    u = np.asarray(noise.draw(shared.noise_spec, 5, 16))
    assert np.array_equal(shared.encode(x, noise=np.zeros_like(u)), private.encode(x))
    # the noise weights start at zero: at initialisation u changes nothing...
    assert np.array_equal(shared.encode(x, noise=u), private.encode(x))
    # ...and once they are not zero, the code depends on u
    torch.nn.init.normal_(shared.encoder.noise_head.weight, std=1.0)
    assert not np.array_equal(shared.encode(x, noise=u), private.encode(x))


def test_a_shared_codec_refuses_to_encode_without_the_noise():
    _, shared = _pair()
    with pytest.raises(CodecInputError, match="shares its noise with the decoder"):
        shared.encode(fixed_batch(4))


def test_at_initialisation_dplc_shared_takes_dplc_s_first_step():
    g = Generator(tiny_net())
    x = fixed_batch(16, seed=2)
    losses = {}
    for name in ("dplc", "dplc_shared"):
        torch.manual_seed(0)
        m = build_method(tiny_net(code_channels=2), tiny_method(name, batch_size=16), 4, generator=g)
        torch.manual_seed(1)
        losses[name] = m.step(lambda n: x[:n])
    assert losses["dplc_shared"]["sqrt_mse"] == pytest.approx(losses["dplc"]["sqrt_mse"], rel=1e-5)
    assert losses["dplc_shared"]["mmd"] == pytest.approx(losses["dplc"]["mmd"], rel=1e-3, abs=1e-6)


def _shared_trained(mode: str = "shared") -> tuple[Codec, EntropyModel]:
    if mode == "dither":
        torch.manual_seed(0)
        return build_codec(tiny_net(code_channels=2), "dither").eval(), EntropyModel.uniform(channels=2, levels=2)
    _, shared = _pair()
    torch.manual_seed(7)
    torch.nn.init.normal_(shared.encoder.noise_head.weight, std=0.5)
    return shared, EntropyModel.uniform(channels=2, levels=2)


SHARED_MODES = pytest.mark.parametrize("mode", ["shared", "dither"])


class _Constant(torch.nn.Module):
    """An encoder whose pre-quantizer output is ``value`` everywhere."""

    def __init__(self, shape: tuple[int, ...], value: float) -> None:
        super().__init__()
        self.shape, self.value = shape, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], *self.shape), self.value)


class _Input(torch.nn.Module):
    """A stand-in for B that returns the code part of its input."""

    def forward(self, code: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return code


@pytest.mark.parametrize("y", [0.1, 0.4])
def test_dither_is_subtracted_so_the_error_is_uniform_whatever_the_value(y):
    """Subtractive dither (Ziv 1985): with d ~ U[-Δ/2, Δ/2] shared, Q(y + d) - d - y is
    uniform on [-Δ/2, Δ/2] (variance Δ²/12) for every y inside the quantizer's range. The
    error of Q(y + d) alone (d not subtracted at the decoder) depends on y."""
    codec = build_codec(tiny_net(code_channels=2), "dither").eval()
    codec.encoder = _Constant(codec.net.code_shape, y)
    codec.bmap = _Input()
    n = 4000
    u = torch.from_numpy(noise.draw(codec.noise_spec, 3, n))
    code = codec.code(torch.zeros(n, *codec.net.image_shape), u)
    err = codec.latent(code, u) - y  # what B reads, minus the value the encoder meant
    step = codec.quantizer.step
    assert err.abs().max() <= step / 2 + 1e-6
    assert err.mean().abs() < 0.01 and err.var().item() == pytest.approx(step**2 / 12, rel=0.05)
    plain = code - y  # the dither left in: its error variance is (Δ/2)² - y², not Δ²/12
    assert plain.var().item() == pytest.approx(step**2 / 4 - y**2, rel=0.05)


@SHARED_MODES
def test_a_shared_noise_file_is_format_3_with_its_flag_and_private_files_stay_format_2(mode):
    private, _ = _pair()
    shared, model = _shared_trained(mode)
    images = _images()
    h = bitstream.read_header(files.compress(shared, model, images, "s", 1, seed=11))
    assert (h.version, h.shared_noise, h.seed) == (3, True, 11)
    assert h.to_dict()["shared_noise"] is True
    p = bitstream.read_header(files.compress(private, model, images, "p", 1, seed=11))
    assert (p.version, p.shared_noise) == (2, False)


@SHARED_MODES
def test_the_seed_of_a_shared_file_is_random_unless_given(mode):
    shared, model = _shared_trained(mode)
    images = _images(2)
    seeds = {bitstream.read_header(files.compress(shared, model, images, "s", 1)).seed for _ in range(3)}
    assert len(seeds) == 3
    private, _ = _pair()
    assert bitstream.read_header(files.compress(private, model, images, "p", 1)).seed == 0


@SHARED_MODES
def test_decoding_a_shared_file_with_another_seed_is_refused(mode):
    shared, model = _shared_trained(mode)
    data = files.compress(shared, model, _images(), "s", 1, seed=11)
    same = files.decompress(data, shared, model, seed=11)  # its own seed is fine
    assert np.array_equal(same, files.decompress(data, shared, model))
    with pytest.raises(bitstream.SharedNoiseError, match="shared with its encoder"):
        files.decompress(data, shared, model, seed=12)


def test_a_format_2_file_cannot_claim_shared_noise():
    shared, model = _shared_trained()
    data = bytearray(files.compress(shared, model, _images(), "s", 1, seed=11))
    data[4:6] = (2).to_bytes(2, "big")  # the same bytes declared as format 2
    data[-4:] = zlib.crc32(bytes(data[:-4])).to_bytes(4, "big")
    with pytest.raises(bitstream.HeaderFieldError, match="coding mode"):
        bitstream.unpack(bytes(data))


_ROUND_TRIP = """
import sys, numpy as np, torch
sys.path.insert(0, {tests!r})
from test_shared_codec import _images, _shared_trained
from dplc import files
shared, model = _shared_trained({mode!r})
data = files.compress(shared, model, _images(9), "s", 1, seed=2**63 + 5)
sys.stdout.buffer.write(data)
"""


@SHARED_MODES
def test_the_shared_noise_round_trip_is_bit_exact_across_processes_and_batch_sizes(mode):
    shared, model = _shared_trained(mode)
    images = _images(9)
    here = files.compress(shared, model, images, "s", 1, seed=2**63 + 5)
    code = _ROUND_TRIP.format(tests=str(Path(__file__).parent), mode=mode)
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout
    assert here == there
    header = bitstream.read_header(here)
    u = noise.draw(shared.noise_spec, header.seed, 9)
    x = torch.from_numpy(to_float(pad_to(images, 32)))
    one_by_one = np.concatenate([shared.encode(x[i : i + 1], noise=u[i : i + 1]) for i in range(9)])
    assert np.array_equal(one_by_one, shared.encode(x, noise=u))  # the code of image i: (x_i, u_i)
    assert np.array_equal(noise.draw(shared.noise_spec, header.seed, 4, first=5), u[5:])
    assert np.array_equal(files.decompress(here, shared, model), files.decompress(there, shared, model))


@SHARED_MODES
def test_the_command_line_shows_the_flag_and_refuses_another_seed(tmp_path, capsys, mode):
    from PIL import Image

    from dplc.compress import main

    shared, model = _shared_trained(mode)
    shared.save(tmp_path / "shared")
    model.save(tmp_path / "shared")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i, image in enumerate(_images(3)):
        Image.fromarray(image[..., 0], "L").save(inputs / f"{i}.png")
    out = tmp_path / "a.dplc"
    assert main(["compress", str(inputs), "-o", str(out), "--model", str(tmp_path / "shared")]) == 0
    assert main(["info", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert info["shared_noise"] is True and info["version"] == 3
    for flag in (["--seed", "5"], ["--samples", "2"]):
        code = main(["decompress", str(out), "-o", str(tmp_path / f"d{flag[0]}"), "--model", str(tmp_path / "shared"), *flag])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "shared with the encoder" in err, err
        assert not (tmp_path / f"d{flag[0]}").exists()
    assert main(["decompress", str(out), "-o", str(tmp_path / "d"), "--model", str(tmp_path / "shared")]) == 0
    assert len(list((tmp_path / "d").glob("*.png"))) == 3


@SHARED_MODES
def test_a_shared_noise_codec_has_no_onnx_form(tmp_path, mode):
    from dplc.onnx_export import export_onnx

    shared, _ = _shared_trained(mode)
    with pytest.raises(ValueError, match="ONNX export is not"):
        export_onnx(shared, tmp_path / "onnx")
    assert not (tmp_path / "onnx").exists()  # nothing half-written
