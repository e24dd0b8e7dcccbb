"""The .dplc container (dplc.bitstream): layout, defects, determinism, golden files, fuzzing.

Golden files: ``tests/golden/tiny-ans.dplc`` and ``tiny-fixed.dplc`` are what a fixed tiny codec
(``torch.manual_seed(0)``, ``NetConfig(width=8, latent_dim=16, code_channels=2)``) makes of fixed
input today; ``v1-tiny-*.dplc`` are the same written in format 1 (torch-generator noise).
``tests/golden/golden.json`` holds every file's SHA-256 and the SHA-256 of its decoded pixels. A
change of the byte layout, the coder, the noise or the codec that alters them fails the test.
To accept such a change of today's files on purpose, regenerate::

    DPLC_REGEN_GOLDEN=1 pytest tests/test_bitstream.py -k golden

and commit the new files (and bump ``FORMAT_VERSION`` if the layout changed).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dplc import bitstream, noise
from dplc.bitstream import (
    BadMagicError,
    BitstreamError,
    ChecksumError,
    Header,
    HeaderFieldError,
    LengthError,
    ModelMismatchError,
    PayloadError,
    ShortFileError,
    SymbolRangeError,
    UnsupportedVersionError,
    pack,
    read_header,
    unpack,
)
from dplc.codec import Codec, build_codec
from dplc.config import NetConfig
from dplc.data import to_float, to_tensor
from dplc.entropy import EntropyModel
from dplc.files import compress, decompress
from dplc.fused import NarrowConv
from dplc.pixels import ImageInputError

GOLDEN = Path(__file__).parent / "golden"
def crc_fix(data: bytes) -> bytes:
    """Recompute the trailing CRC-32 of ``data`` (a forged file that passes the checksum)."""
    body = bytes(data[:-4])
    return body + zlib.crc32(body).to_bytes(4, "big")


NAME_AT = 8  # the model name starts here; the fields follow it (module doc of dplc.bitstream)


def tiny_codec(code_channels: int = 2, levels: int = 2, seed: int = 0) -> Codec:
    """The fixed tiny codec of the golden test: deterministic weights from ``seed``."""
    torch.manual_seed(seed)
    net = NetConfig(width=8, latent_dim=16, code_channels=code_channels, levels=levels)
    codec = build_codec(net, "map" if code_channels else "prior").eval()
    with torch.no_grad():  # widen the BatchNorm gains so the untrained decodes vary visibly
        for m in codec.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(2.0, 4.0)
    return codec


def fixed_images(n: int = 4) -> np.ndarray:
    """Deterministic 28x28 grayscale test pictures (Fashion-MNIST's geometry)."""
    y, x = np.mgrid[0:28, 0:28]
    pics = [((x * (k + 1) + y * (3 - k)) * 7 % 256) for k in range(n)]
    return np.stack(pics).astype(np.uint8)[..., None]


def fitted_entropy(codec: Codec) -> EntropyModel:
    train = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    symbols = codec.encode(to_float(to_tensor(train, 32)))
    return EntropyModel.fit(symbols, codec.net.levels)


@pytest.fixture(scope="module")
def tiny() -> tuple[Codec, EntropyModel]:
    codec = tiny_codec()
    return codec, fitted_entropy(codec)


@pytest.fixture(scope="module")
def files(tiny) -> dict[str, bytes]:
    codec, model = tiny
    images = fixed_images()
    return {
        "ans": compress(codec, model, images, "tiny", 3, seed=11, mode="ans"),
        "fixed": compress(codec, model, images, "tiny", 3, seed=11, mode="fixed"),
    }


def field_offset(data: bytes) -> int:
    return NAME_AT + data[7]


def forge(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite one big-endian field and recompute the CRC (a well-formed lie)."""
    b = bytearray(data)
    struct.pack_into(">" + fmt, b, offset, value)
    return crc_fix(bytes(b))


# ------------------------------------------------------------------------ layout


def test_header_round_trip_and_sizes(files) -> None:
    data = files["ans"]
    h, payload = unpack(data)
    assert (h.model_name, h.model_version, h.count, h.height, h.width) == ("tiny", 3, 4, 28, 28)
    assert (h.channels, h.image_size, h.levels, h.code_channels) == (1, 32, 2, 2)
    assert (h.mode, h.seed, h.version) == ("ans", 11, bitstream.FORMAT_VERSION)
    assert h.file_bytes == len(data) and h.payload_length == len(payload)
    assert h.header_bytes == bitstream.HEADER_OVERHEAD + len("tiny") == 88
    assert data[:4] == b"DPLC" and struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])
    info = h.to_dict()
    assert info["fixed_length_bits_per_image"] == 2 * 16
    assert info["payload_bits_per_image"] == 8 * h.payload_length / 4
    assert pack(h, payload) == data


def test_fixed_mode_payload_is_exactly_the_fixed_rate(files) -> None:
    h = read_header(files["fixed"])
    assert h.mode == "fixed" and h.payload_length * 8 == 4 * 2 * 16 * 1


@pytest.mark.parametrize("channels", [0, 1, 4])
@pytest.mark.parametrize("mode", ["ans", "fixed"])
def test_round_trip_matches_the_codec(channels: int, mode: str) -> None:
    codec = tiny_codec(channels)
    model = fitted_entropy(codec)
    images = fixed_images(5)
    data = compress(codec, model, images, "tiny", 1, seed=5, mode=mode)
    out = decompress(data, codec, model)
    assert out.shape == images.shape and out.dtype == np.uint8
    symbols = codec.encode(to_float(to_tensor(images, 32)), fused=True)
    file_noise = noise.draw(codec.noise_spec, 5, 5)  # format 2: image i's noise is (seed, i)'s
    for fused in (True, False):
        direct = codec.decode(symbols, fused=fused, noise=file_noise)
        pixels = ((direct.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)[:, :, 2:30, 2:30]
        expected = pixels.permute(0, 2, 3, 1).numpy().astype(int)
        if fused:  # the file path decodes with the fused copy: exactly these images
            assert np.array_equal(out, expected)
        else:  # the reference decoder agrees up to float rounding
            assert np.abs(out.astype(int) - expected).max() <= 1
    if channels == 0:
        assert read_header(data).payload_length == 0


def test_same_seed_is_bit_identical_other_seeds_differ(files, tiny) -> None:
    codec, model = tiny
    assert codec.stochastic
    a = decompress(files["ans"], codec, model)
    b = decompress(files["ans"], codec, model)
    assert np.array_equal(a, b)
    assert np.array_equal(a, decompress(files["ans"], codec, model, seed=11))
    assert not np.array_equal(a, decompress(files["ans"], codec, model, seed=12))
    assert np.array_equal(a, decompress(files["fixed"], codec, None))  # same symbols, same seed


def test_fused_and_bf16_decodes_are_close_to_the_reference(files, tiny) -> None:
    codec, model = tiny
    ref = decompress(files["ans"], codec, model, fused=False).astype(int)
    fused = decompress(files["ans"], codec, model).astype(int)
    bf16 = decompress(files["ans"], codec, model, precision="bf16").astype(int)
    assert np.abs(fused - ref).max() <= 1
    assert np.abs(bf16 - ref).mean() < 1.0
    before = codec.inference_nets()
    assert codec.inference_nets() == before  # cached: the same module objects
    x = to_float(to_tensor(fixed_images(), 32))
    assert np.array_equal(codec.encode(x, fused=True), codec.encode(x))
    with torch.no_grad():  # a weight update invalidates the cached inference copy
        trained = tiny_codec()
        trained.generator.body[0].weight.mul_(1.5)
        first = trained.decode(np.zeros((1, 2, 4, 4), np.uint8), fused=True)
        trained.generator.body[0].weight.mul_(1.5)
        second = trained.decode(np.zeros((1, 2, 4, 4), np.uint8), fused=True)
    assert not torch.equal(first, second)
    reference = trained.decode(np.zeros((1, 2, 4, 4), np.uint8))
    assert torch.allclose(second, reference, atol=1e-5)


@pytest.mark.parametrize("cout, k", [(1, 3), (3, 3), (2, 5)])
def test_narrow_conv_equals_the_convolution(cout: int, k: int) -> None:
    conv = torch.nn.Conv2d(8, cout, k, padding=k // 2)
    assert NarrowConv.applies(conv) and not NarrowConv.applies(torch.nn.Conv2d(8, 8, 3, padding=1))
    x = torch.randn(3, 8, 10, 12).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert torch.allclose(NarrowConv(conv)(x), conv(x), atol=1e-5)


def test_compress_refuses_bad_images(tiny) -> None:
    codec, model = tiny
    with pytest.raises(ImageInputError, match="uint8"):
        compress(codec, model, fixed_images().astype(np.float32), "t", 1)
    with pytest.raises(ImageInputError, match="up to 32x32"):
        compress(codec, model, np.zeros((1, 40, 40, 1), np.uint8), "t", 1)
    with pytest.raises(ImageInputError, match="1-channel"):
        compress(codec, model, np.zeros((1, 28, 28, 3), np.uint8), "t", 1)
    with pytest.raises(ValueError, match="1..255"):
        compress(codec, model, fixed_images(), "x" * 256, 1)
    with pytest.raises(ValueError, match="entropy model"):
        compress(codec, EntropyModel.uniform(3, 2), fixed_images(), "t", 1)


# ----------------------------------------------------------------------- defects


def test_every_defect_has_its_own_error(files, tiny) -> None:
    codec, model = tiny
    data = files["ans"]
    f = field_offset(data)
    cases: list[tuple[bytes, type[BitstreamError], str]] = [
        (b"", ShortFileError, "empty file"),
        (data[:3], ShortFileError, "truncated"),
        (data[:20], ShortFileError, "truncated"),
        (b"GIF8" + data[4:], BadMagicError, "not a dplc file"),
        (
            data[:4] + b"\x00\x04" + data[6:],
            UnsupportedVersionError,
            "unsupported format version 4",
        ),
        (
            data[:4] + b"\x00\x00" + data[6:],
            UnsupportedVersionError,
            "unsupported format version 0",
        ),
        (data[:-1], LengthError, "runs past the end"),
        (data + b"\x00", LengthError, "trailing data"),
        (data[:-5] + bytes([data[-5] ^ 1]) + data[-4:], ChecksumError, "CRC mismatch"),
        (data[:-4] + bytes(4), ChecksumError, "CRC mismatch"),
        (forge(data, f + 52, "B", 2), HeaderFieldError, "channels 2"),
        (forge(data, f + 53, "H", 48), HeaderFieldError, "network image size 48"),
        (forge(data, f + 48, "H", 33), HeaderFieldError, "image size 33x28"),
        (forge(data, f + 44, "I", 0), HeaderFieldError, "image count 0"),
        (forge(data, f + 44, "I", bitstream.MAX_IMAGES + 1), HeaderFieldError, "image count"),
        (forge(data, 6, "B", 7), HeaderFieldError, "coding mode 7"),
        (forge(data, f + 59, "B", 8), HeaderFieldError, "code grid 8"),
        (forge(data, f + 55, "H", 1), HeaderFieldError, "quantizer levels 1"),
    ]
    for bad, kind, words in cases:
        with pytest.raises(kind, match=words):
            decompress(bad, codec, model)
    # a payload length beyond any file is refused before anything is allocated
    huge = bytearray(data)
    struct.pack_into(">I", huge, f + 68, 0xFFFFFFFF)
    with pytest.raises(LengthError, match="exceeds the limit"):
        unpack(bytes(huge))


def test_payload_and_symbol_errors(files, tiny) -> None:
    codec, model = tiny
    h, payload = unpack(files["ans"])
    with pytest.raises(PayloadError, match="corrupt payload"):
        decompress(pack(h, payload + b"\x05\x06\x07\x08"), codec, model)
    with pytest.raises(HeaderFieldError, match="fixed-length payload"):
        decompress(pack(Header(**{**h.__dict__, "mode": "fixed"}), payload[:-1]), codec, model)
    codec3 = tiny_codec(1, levels=3)
    model3 = fitted_entropy(codec3)
    data = compress(codec3, model3, fixed_images(1), "tiny3", 1, mode="fixed")
    h3, p3 = unpack(data)
    with pytest.raises(SymbolRangeError, match="out of range"):
        decompress(pack(h3, b"\xff" * len(p3)), codec3, model3)


def test_model_mismatch_is_refused(files, tiny) -> None:
    codec, model = tiny
    other = tiny_codec(seed=1)
    with pytest.raises(ModelMismatchError, match="made by 'tiny' version 3"):
        decompress(files["ans"], other, model)
    with pytest.raises(ModelMismatchError, match="entropy coded with model"):
        decompress(files["ans"], codec, EntropyModel.uniform(2, 2))
    with pytest.raises(ModelMismatchError, match="needs its entropy model"):
        decompress(files["ans"], codec, None)
    with pytest.raises(ModelMismatchError, match="weights"):
        decompress(files["ans"], tiny_codec(4), model)


# ------------------------------------------------------------------------ golden


def _golden_files() -> dict[str, bytes]:
    codec = tiny_codec()
    model = fitted_entropy(codec)
    images = fixed_images()
    return {
        f"tiny-{mode}.dplc": compress(codec, model, images, "tiny", 3, seed=11, mode=mode)
        for mode in ("ans", "fixed")
    }


def _digest(data: bytes | np.ndarray) -> str:
    return hashlib.sha256(data if isinstance(data, bytes) else data.tobytes()).hexdigest()


def test_golden_files() -> None:
    """Today's files are byte-stable, and every golden file (format 1 included) decodes to the
    pixels recorded in golden.json: the coder, the noise and the networks are pinned."""
    made = _golden_files()
    codec = tiny_codec()
    model = fitted_entropy(codec)
    expected = json.loads((GOLDEN / "golden.json").read_text())
    if os.environ.get("DPLC_REGEN_GOLDEN") == "1":
        for name, data in made.items():
            (GOLDEN / name).write_bytes(data)
            expected["files"][name] = _digest(data)
            expected["decoded"][name] = _digest(decompress(data, codec, model))
        (GOLDEN / "golden.json").write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n")
    made_digests = {name: _digest(data) for name, data in made.items()}
    assert made_digests == {k: expected["files"][k] for k in made}, (
        "the .dplc bytes changed; see this file's docstring to regenerate"
    )
    assert {read_header(d).version for d in made.values()} == {bitstream.FORMAT_VERSION}
    for name, digest in expected["files"].items():
        stored = (GOLDEN / name).read_bytes()
        assert _digest(stored) == digest
        decoded = decompress(stored, codec, model)
        assert decoded.shape == (4, 28, 28, 1)
        assert _digest(decoded) == expected["decoded"][name], f"{name} decodes differently"
    assert {read_header((GOLDEN / n).read_bytes()).version for n in expected["files"]} == {1, 2}


# ---------------------------------------------------------------------- fuzzing


@st.composite
def mutated(draw: st.DrawFn, originals: list[bytes]) -> bytes:
    """A truncated, bit-flipped, overwritten, extended or shortened copy of a valid file."""
    data = draw(st.sampled_from(originals))
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "delete", "append"]))
    n = len(data)
    at = draw(st.integers(0, n - 1))
    if kind == "truncate":
        out = data[:at]
    elif kind == "flip":
        b = bytearray(data)
        for pos in draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=4)):
            b[pos] ^= draw(st.integers(1, 255))
        out = bytes(b)
    elif kind == "overwrite":
        chunk = draw(st.binary(min_size=1, max_size=16))
        out = data[:at] + chunk + data[at + len(chunk) :]
    elif kind == "insert":
        out = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    elif kind == "delete":
        out = data[:at] + data[at + draw(st.integers(1, 8)) :]
    else:
        out = data + draw(st.binary(min_size=1, max_size=16))
    return out if out not in originals else out[:-1]  # an overwrite may restore the bytes


_FUZZ_CODEC = tiny_codec()
_FUZZ_MODEL = fitted_entropy(_FUZZ_CODEC)
_FUZZ_FILES = [
    compress(_FUZZ_CODEC, _FUZZ_MODEL, fixed_images(k), "fuzz", 1, seed=k, mode=mode)
    for k in (1, 3)
    for mode in ("ans", "fixed")
]


@pytest.mark.timeout(120)
@settings(
    max_examples=1200,
    deadline=timedelta(milliseconds=500),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated(_FUZZ_FILES))
def test_fuzz_mutated_files_raise_bitstream_errors(data: bytes) -> None:
    assert data not in _FUZZ_FILES
    with pytest.raises(BitstreamError):
        decompress(data, _FUZZ_CODEC, _FUZZ_MODEL)


@pytest.mark.timeout(120)
@settings(
    max_examples=500,
    deadline=timedelta(milliseconds=1000),
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated(_FUZZ_FILES))
def test_fuzz_forged_files_with_valid_crc(data: bytes) -> None:
    """With the CRC recomputed, the field checks alone must stop bad headers cleanly."""
    if len(data) < 8:
        return
    forged = crc_fix(data)
    try:
        out = decompress(forged, _FUZZ_CODEC, _FUZZ_MODEL)
    except BitstreamError:
        return
    h = read_header(forged)
    assert out.shape == (h.count, h.height, h.width, 1)


def test_the_container_needs_neither_torch_nor_pyarrow() -> None:
    """Reading a header pulls in the container alone (numpy and the entropy coder)."""
    import subprocess
    import sys

    def heavy(modules: str) -> str:
        code = (
            f"import sys, {modules}; "
            "print([m for m in ('torch', 'pyarrow', 'dplc.data', 'dplc.codec', 'mlflow') if m in sys.modules])"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return out.stdout.strip()

    assert heavy("dplc.bitstream, dplc.payload") == "[]"
    assert "torch" in heavy("dplc.files")  # the check sees an import when there is one
