"""dplc.onnx_export: the rewritten layers equal torch's, and an export is deterministic."""

from __future__ import annotations

import hashlib

import pytest
import torch
from test_bitstream import tiny_codec
from torch import nn

from dplc.onnx_export import SubpixelConvTranspose, export_form, export_onnx


@pytest.mark.parametrize("bias", [False, True])
def test_subpixel_equals_the_transposed_convolution(bias: bool) -> None:
    torch.manual_seed(0)
    ct = nn.ConvTranspose2d(5, 3, 4, stride=2, padding=1, bias=bias)
    x = torch.randn(2, 5, 6, 7)
    with torch.no_grad():
        assert torch.allclose(SubpixelConvTranspose(ct)(x), ct(x), atol=1e-5)


def test_export_form_equals_the_module_and_a_wrong_tap_map_would_not() -> None:
    codec = tiny_codec(2)
    values = torch.rand(3, 2, 4, 4)
    noise = torch.rand(3, *codec.noise_spec.shape) - 0.5
    with torch.no_grad():
        ref = codec.generator(codec.bmap(values, noise))
        form = export_form(codec.generator)(export_form(codec.bmap)(values, noise))
        assert (form - ref).abs().max() < 1e-4
        assert not any(isinstance(m, nn.ConvTranspose2d) for m in export_form(codec.generator).modules())
        broken = export_form(codec.generator)
        for m in broken.modules():  # swap the parities: the check above must notice
            if isinstance(m, SubpixelConvTranspose):
                w = m.conv.weight.data.view(-1, 4, *m.conv.weight.shape[1:])
                m.conv.weight.data = w.flip(1).reshape(m.conv.weight.shape)
                break
        assert (broken(export_form(codec.bmap)(values, noise)) - ref).abs().max() > 1e-2


def test_export_is_deterministic(tmp_path) -> None:
    codec = tiny_codec(2)
    a = export_onnx(codec, tmp_path / "a")
    b = export_onnx(codec, tmp_path / "b")
    assert a == b and set(a["files"]) == {"encoder.onnx", "decoder.onnx"}
    for name, digest in a["files"].items():
        assert hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest() == digest
    assert a["weights_sha256"] == codec.weights_hash()


def test_a_codec_without_decoder_noise_exports_and_ignores_the_seed(tmp_path) -> None:
    """DPLC's B without noise (``train.dplc.per_rate``'s high rates): no noise channels, an ONNX
    pair all the same, and one decode whatever the seed."""
    from dplc.codec import Codec, build_codec
    from dplc.config import NetConfig

    torch.manual_seed(0)
    net = NetConfig(width=8, latent_dim=16, code_channels=2, levels=2, noise=False)
    build_codec(net, "map", meta={"method": "dplc"}).eval().save(tmp_path / "codec")
    codec = Codec.load(tmp_path / "codec")
    assert codec.noise_spec.shape[0] == 0 and not codec.shares_noise
    assert set(export_onnx(codec, tmp_path / "onnx")["files"]) == {"encoder.onnx", "decoder.onnx"}
    symbols = codec.encode(torch.rand(3, 1, 32, 32) * 2 - 1)
    assert torch.equal(codec.decode(symbols, seed=1), codec.decode(symbols, seed=2))
