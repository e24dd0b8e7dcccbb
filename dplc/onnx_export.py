"""Export a codec's encoder and decoder to ONNX, for decoders without torch (:mod:`dplc.runtime`).

Each graph is the codec's inference network (Tschannen et al. 2018: E, and G∘B) in the form
that ONNX Runtime runs fast on a CPU, equal to the torch modules up to float rounding:

* every BatchNorm that follows a convolution is folded into it (eval-mode statistics);
* a stride-2, 4x4, padding-1 transposed convolution becomes a 3x3 convolution with four times
  the outputs followed by a depth-to-space (sub-pixel) shuffle: output pixel (2i+a, 2j+b)
  only sees the kernel taps of parity (a, b), so each parity is an ordinary convolution;
* a stride-1 transposed convolution becomes a convolution with the flipped, transposed kernel.

Files written beside ``codec.json``: ``encoder.onnx`` (images (N, channels, S, S) in [-1, 1]
-> E's output (N, C, 4, 4) before quantization; codecs with C > 0), ``decoder.onnx`` (inputs
``values`` (N, C, 4, 4), the quantizer centres of the symbols, and ``noise`` as
:attr:`dplc.codec.Codec.noise_spec`; output images (N, channels, S, S) in [-1, 1]) and
``onnx.json``, which records the weights hash they were exported from and each file's SHA-256.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dplc.codec import Codec
from dplc.folder import DECODER_FILE, ENCODER_FILE, ONNX_FILE
from dplc.fused import fold_batchnorm

ONNX_FORMAT = "dplc-onnx"
OPSET = 17


class SubpixelConvTranspose(nn.Module):
    """ConvTranspose2d(k=4, stride=2, padding=1) as conv3x3 to 4·C_out channels + PixelShuffle(2).

    out[2i+a, 2j+b] = Σ_{dy,dx ∈ {-1,0,1}} x[i+dy, j+dx] · W[:, :, a-2dy+1, b-2dx+1] where the
    tap index lies in 0..3 (the transposed convolution's definition with stride 2, padding 1).
    """

    def __init__(self, ct: nn.ConvTranspose2d) -> None:
        super().__init__()
        w = ct.weight.detach()  # (C_in, C_out, 4, 4)
        cin, cout = w.shape[:2]
        k = torch.zeros(cout, 2, 2, cin, 3, 3, dtype=w.dtype)
        for a in range(2):
            for b in range(2):
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        ky, kx = a - 2 * dy + 1, b - 2 * dx + 1
                        if 0 <= ky <= 3 and 0 <= kx <= 3:
                            k[:, a, b, :, dy + 1, dx + 1] = w[:, :, ky, kx].t()
        self.conv = nn.Conv2d(cin, 4 * cout, 3, padding=1, bias=ct.bias is not None)
        self.conv.weight.data = k.reshape(4 * cout, cin, 3, 3)
        if ct.bias is not None:
            self.conv.bias.data = ct.bias.detach().repeat_interleave(4)
        self.shuffle = nn.PixelShuffle(2)

    @staticmethod
    def applies(m: nn.Module) -> bool:
        return (
            type(m) is nn.ConvTranspose2d
            and m.kernel_size == (4, 4)
            and m.stride == (2, 2)
            and m.padding == (1, 1)
            and m.output_padding == (0, 0)
            and m.groups == 1
            and m.dilation == (1, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(self.conv(x))


def _stride1_as_conv(ct: nn.ConvTranspose2d) -> nn.Conv2d:
    """A stride-1 transposed convolution as the convolution with the flipped, transposed kernel."""
    w = ct.weight.detach()
    k, p = ct.kernel_size[0], ct.padding[0]
    conv = nn.Conv2d(w.shape[0], w.shape[1], k, padding=k - 1 - p, bias=ct.bias is not None)
    conv.weight.data = w.flip(2, 3).transpose(0, 1).contiguous()
    if ct.bias is not None:
        conv.bias.data = ct.bias.detach().clone()
    return conv


def export_form(module: nn.Module) -> nn.Module:
    """A frozen copy of ``module`` with BatchNorm folded and transposed convolutions rewritten."""
    m = fold_batchnorm(copy.deepcopy(module).float().eval()).requires_grad_(False)
    for parent in list(m.modules()):
        for name, child in list(parent.named_children()):
            if SubpixelConvTranspose.applies(child):
                setattr(parent, name, SubpixelConvTranspose(child))
            elif (
                type(child) is nn.ConvTranspose2d
                and child.stride == (1, 1)
                and child.groups == 1
                and child.dilation == (1, 1)
                and child.output_padding == (0, 0)
                and child.kernel_size[0] == child.kernel_size[1]
                and child.padding[0] == child.padding[1]
            ):
                setattr(parent, name, _stride1_as_conv(child))
    return m.eval()


class DecoderGraph(nn.Module):
    """(values, noise) -> images: G(B(values, noise)), G(noise) or the stored constant."""

    def __init__(self, codec: Codec) -> None:
        super().__init__()
        self.mode = codec.mode
        self.generator = export_form(codec.generator)
        self.bmap = export_form(codec.bmap) if codec.mode == "map" else None

    def forward(self, values: Tensor, noise: Tensor) -> Tensor:
        if self.mode == "prior":
            return self.generator(noise)
        if self.mode == "mean":
            return self.generator(values.flatten(1))  # the constant, one per input
        assert self.bmap is not None
        return self.generator(self.bmap(values, noise))


def _export(module: nn.Module, args: tuple[Tensor, ...], names: list[str]) -> bytes:
    buf = io.BytesIO()
    axes = {name: {0: "n"} for name in names}
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation and shape notes
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buf,
            input_names=names[:-1],
            output_names=names[-1:],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
            do_constant_folding=True,
        )
    return buf.getvalue()


def export_onnx(codec: Codec, directory: str | Path) -> dict[str, Any]:
    """Write ``encoder.onnx`` (C > 0), ``decoder.onnx`` and ``onnx.json`` into ``directory``."""
    if codec.shares_noise:
        raise ValueError(
            "a shared-noise codec's encoder reads the decoder's noise; its ONNX export is not "
            "supported (decode it with the torch backend)"
        )
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    net = codec.net
    n = 2
    graphs: dict[str, bytes] = {}
    if net.code_channels > 0 and codec.encoder is not None:
        encoder = export_form(codec.encoder)
        graphs[ENCODER_FILE] = _export(
            encoder, (torch.zeros(n, *net.image_shape),), ["images", "code"]
        )
    values = torch.zeros(n, *net.code_shape)
    noise = torch.zeros(n, *codec.noise_spec.shape)
    graphs[DECODER_FILE] = _export(
        DecoderGraph(codec).eval(), (values, noise), ["values", "noise", "images"]
    )
    for name, blob in graphs.items():
        (d / name).write_bytes(blob)
    record = {
        "format": ONNX_FORMAT,
        "opset": OPSET,
        "weights_sha256": codec.weights_hash(),
        "files": {name: hashlib.sha256(blob).hexdigest() for name, blob in graphs.items()},
    }
    (d / ONNX_FILE).write_text(json.dumps(record, indent=2, sort_keys=True))
    return record
