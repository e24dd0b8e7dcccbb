"""The self-describing ``.dplc`` container: header, payload, CRC.

A file holds a batch of N images compressed with one registered codec. Everything a decoder
needs to check that it holds the right model, and to repeat a decode exactly, is in the header.
All integers are big-endian and unsigned.

======  ======  ======  ==================================================================
offset  bytes   type    field
======  ======  ======  ==================================================================
0       4       bytes   magic ``b"DPLC"``
4       2       u16     format version (:data:`READABLE_VERSIONS`; others are refused)
6       1       u8      coding mode: 0 = ANS (entropy coded), 1 = fixed-length; in format 3
                        bit 0 is the coding mode and bit 1 is set when the decoder noise is
                        shared with the encoder (``dplc_shared``)
7       1       u8      n, length of the model name in bytes, 1..255
8       n       utf-8   the model's registered name (MLflow registry name)
8+n     4       u32     the model's registered version (0 = not from a registry)
12+n    32      bytes   SHA-256 of the codec weights (:meth:`dplc.codec.Codec.weights_hash`)
44+n    8       bytes   entropy-model id (:attr:`dplc.entropy.EntropyModel.model_id`)
52+n    4       u32     N, number of images, 1..:data:`MAX_IMAGES`
56+n    2       u16     H, height of the original images (≤ S)
58+n    2       u16     W, width of the original images (≤ S)
60+n    1       u8      channels of the images (1 or 3)
61+n    2       u16     S, the network's image size (32 or 64); images are padded to S x S
63+n    2       u16     L, quantizer levels (2..256)
65+n    2       u16     C, code channels (0..:data:`MAX_CODE_CHANNELS`)
67+n    1       u8      code grid G (4): one image's code is C x G x G symbols
68+n    8       u64     decoder noise seed (image i decodes with the noise of (seed, i))
76+n    4       u32     P, payload length in bytes
80+n    P       bytes   payload: one ANS stream of all N·C·16 symbols, channel-major
                        (:func:`dplc.entropy.ans_encode`), or the symbols bit-packed in
                        (N, C, 4, 4) order, ``ceil(log2 L)`` bits each, MSB first
80+n+P  4       u32     CRC-32 (zlib) of every byte before it
======  ======  ======  ==================================================================

The header is 84 + n bytes with the CRC. Parsing (:func:`unpack`) bounds every length before
using it, checks the CRC before trusting any field, then checks every field's range; each defect
raises its own subclass of :class:`BitstreamError` whose message names it. :func:`check_model`
refuses a file made by other weights or geometry (:class:`ModelMismatchError`).

Versions. Format 2 decodes image i with the counter-based noise of :func:`dplc.noise.draw` for
(seed, i), which every decoder can draw exactly, with or without torch. Format 3 (same layout)
adds the shared-noise flag: the encoder chose the code knowing that noise, so the seed is part
of the code and a decoder must not draw another one. A writer uses the oldest format that says
what the file is: format 2 for private noise (byte for byte as before format 3 existed), format 3
for shared noise, which readers older than format 3 refuse instead of decoding it wrongly.
Format 1 files (same layout) drew the noise of the whole file from one ``torch.Generator``
seeded with the seed; :mod:`dplc.files` still decodes them bit-identically.

This module is the container alone (the payload's coding is :mod:`dplc.payload`); it needs numpy
and the entropy coder, not torch. Images go in and out of files through :mod:`dplc.files`
(torch) or :mod:`dplc.runtime` (ONNX Runtime).

>>> import numpy as np
>>> from dplc.entropy import EntropyModel
>>> from dplc.payload import decode_payload, encode_payload
>>> model = EntropyModel.uniform(channels=2, levels=2)
>>> symbols = np.random.default_rng(0).integers(0, 2, (3, 2, 4, 4)).astype(np.uint8)
>>> header = Header("doc-codec", 1, "ab" * 32, model.model_id, count=3, height=28, width=28,
...                 channels=1, image_size=32, levels=2, code_channels=2, mode="ans", seed=7)
>>> blob = pack(header, encode_payload(symbols, 2, "ans", model))
>>> h, payload = unpack(blob)
>>> h.model_name, h.count, (h.height, h.width), h.seed, h.mode, h.version
('doc-codec', 3, (28, 28), 7, 'ans', 2)
>>> bool((decode_payload(h, payload, model) == symbols).all())
True
>>> read_header(b"PNG!" + blob[4:])
Traceback (most recent call last):
...
dplc.bitstream.BadMagicError: not a dplc file: it starts with b'PNG!', expected b'DPLC'
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from dplc.config import CHANNELS, CODE_GRID, IMAGE_SIZES, MAX_LEVELS
from dplc.entropy import packed_bits

MAGIC = b"DPLC"
FORMAT_VERSION = 2
"""The format of a file with private decoder noise."""
SHARED_NOISE_VERSION = 3
"""The format of a file whose decoder noise is shared with the encoder (the flag exists from it)."""
READABLE_VERSIONS = (1, 2, 3)
_SHARED_FLAG = 2
MODES = ("ans", "fixed")
MAX_NAME_BYTES = 255
MAX_IMAGES = 1 << 16
MAX_CODE_CHANNELS = 1024
MAX_SYMBOLS = 1 << 27
MAX_PAYLOAD = 1 << 30

_PREFIX = struct.Struct(">4sHBB")  # magic, version, mode, name length
_FIELDS = struct.Struct(">I32s8sIHHBHHHBQI")  # model version .. payload length
_CRC = struct.Struct(">I")
HEADER_OVERHEAD = _PREFIX.size + _FIELDS.size + _CRC.size
"""Container bytes besides the name and the payload (84)."""


class BitstreamError(ValueError):
    """Base class of every defect of a ``.dplc`` file; the message names the defect."""


class ShortFileError(BitstreamError):
    """The file ends before its fixed-size header does (truncated or empty)."""


class BadMagicError(BitstreamError):
    """The file does not start with ``b"DPLC"``."""


class UnsupportedVersionError(BitstreamError):
    """The format version is newer than this dplc reads (or zero)."""


class LengthError(BitstreamError):
    """A declared length runs past the end of the file, or bytes follow the checksum."""


class ChecksumError(BitstreamError):
    """The CRC-32 does not match the bytes: the file is corrupt."""


class HeaderFieldError(BitstreamError):
    """A header field is outside its allowed range (bounds checked before any allocation)."""


class PayloadError(BitstreamError):
    """The payload does not decode to exactly the declared symbols."""


class SymbolRangeError(BitstreamError):
    """A decoded symbol is outside 0..L-1."""


class ModelMismatchError(BitstreamError):
    """The file was made by another model (weights, entropy model or geometry differ)."""


@dataclass(frozen=True)
class Header:
    """The parsed header of a ``.dplc`` file (see the module doc for the byte layout)."""

    model_name: str
    model_version: int
    weights_sha256: str
    entropy_id: str
    count: int
    height: int
    width: int
    channels: int
    image_size: int
    levels: int
    code_channels: int
    mode: str
    seed: int
    payload_length: int = 0
    version: int = FORMAT_VERSION
    shared_noise: bool = False
    """The encoder read the decoder's noise for (seed, image index): decode with this seed only."""

    @property
    def code_shape(self) -> tuple[int, int, int]:
        """(C, 4, 4): one image's symbols."""
        return (self.code_channels, CODE_GRID, CODE_GRID)

    @property
    def header_bytes(self) -> int:
        """Container bytes besides the payload (header and CRC)."""
        return HEADER_OVERHEAD + len(self.model_name.encode())

    @property
    def file_bytes(self) -> int:
        """Total file size."""
        return self.header_bytes + self.payload_length

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict of the fields plus sizes and rates (``dplc.compress info``)."""
        pixels = self.count * self.height * self.width
        return asdict(self) | {
            "header_bytes": self.header_bytes,
            "file_bytes": self.file_bytes,
            "fixed_length_bits_per_image": packed_bits(1, self.code_channels, self.levels),
            "payload_bits_per_image": 8 * self.payload_length / self.count,
            "file_bits_per_image": 8 * self.file_bytes / self.count,
            "payload_bpp": 8 * self.payload_length / pixels,
            "file_bpp": 8 * self.file_bytes / pixels,
        }


# ------------------------------------------------------------------------- byte layout


def pack(header: Header, payload: bytes) -> bytes:
    """Header fields and payload -> file bytes (``header.payload_length`` is ignored)."""
    name = header.model_name.encode("utf-8")
    if not 1 <= len(name) <= MAX_NAME_BYTES:
        raise ValueError(f"model name must be 1..{MAX_NAME_BYTES} UTF-8 bytes, got {len(name)}")
    if header.mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {header.mode!r}")
    if not 0 <= header.seed < 1 << 64:
        raise ValueError(f"seed must be in [0, 2**64), got {header.seed}")
    if not 0 <= header.model_version < 1 << 32:
        raise ValueError(f"model version must be in [0, 2**32), got {header.model_version}")
    if header.shared_noise and header.version < SHARED_NOISE_VERSION:
        raise ValueError(f"shared decoder noise needs format {SHARED_NOISE_VERSION}, got {header.version}")
    flags = MODES.index(header.mode) | (_SHARED_FLAG if header.shared_noise else 0)
    body = _PREFIX.pack(MAGIC, header.version, flags, len(name)) + name
    body += _FIELDS.pack(
        header.model_version,
        bytes.fromhex(header.weights_sha256),
        bytes.fromhex(header.entropy_id),
        header.count,
        header.height,
        header.width,
        header.channels,
        header.image_size,
        header.levels,
        header.code_channels,
        CODE_GRID,
        header.seed,
        len(payload),
    )
    body += payload
    return body + _CRC.pack(zlib.crc32(body))


def unpack(data: bytes) -> tuple[Header, bytes]:
    """File bytes -> (header, payload), raising a :class:`BitstreamError` subclass per defect.

    Order: magic, version, every length against the bytes present, CRC, then field ranges.
    """
    data = bytes(data)
    version, mode_code, name_len = _check_prefix(data)
    shared = version >= SHARED_NOISE_VERSION and bool(mode_code & _SHARED_FLAG)
    if shared:
        mode_code &= ~_SHARED_FLAG
    fields_at = _PREFIX.size + name_len
    payload_at = fields_at + _FIELDS.size
    if len(data) < payload_at:
        raise ShortFileError(
            f"truncated file: {len(data)} bytes end inside the header ({payload_at} needed)"
        )
    fields = _FIELDS.unpack_from(data, fields_at)
    end = _check_length_and_crc(data, payload_at, fields[-1])
    try:
        name = data[_PREFIX.size : fields_at].decode("utf-8")
    except UnicodeDecodeError as e:
        raise HeaderFieldError(f"bad header field: the model name is not UTF-8 ({e})") from e
    model_version, wsha, eid, count, height, width, channels, size, levels, code_ch, grid, seed, _ = (
        fields
    )
    header = Header(
        model_name=name,
        model_version=model_version,
        weights_sha256=wsha.hex(),
        entropy_id=eid.hex(),
        count=count,
        height=height,
        width=width,
        channels=channels,
        image_size=size,
        levels=levels,
        code_channels=code_ch,
        mode=MODES[mode_code] if mode_code < len(MODES) else f"<{mode_code}>",
        seed=seed,
        payload_length=fields[-1],
        version=version,
        shared_noise=shared,
    )
    _check_fields(header, mode_code, grid, name_len)
    return header, data[payload_at:end]


def _check_prefix(data: bytes) -> tuple[int, int, int]:
    """Magic and version of a file; returns (version, mode code, name length)."""
    if not data:
        raise ShortFileError("empty file: 0 bytes, not a dplc file")
    if len(data) < len(MAGIC):
        raise ShortFileError(f"truncated file: {len(data)} bytes, too short to be a dplc file")
    if data[:4] != MAGIC:
        raise BadMagicError(f"not a dplc file: it starts with {data[:4]!r}, expected {MAGIC!r}")
    if len(data) < _PREFIX.size:
        raise ShortFileError(f"truncated file: {len(data)} bytes end inside the header")
    _, version, mode_code, name_len = _PREFIX.unpack_from(data, 0)
    if version not in READABLE_VERSIONS:
        raise UnsupportedVersionError(
            f"unsupported format version {version}: this dplc reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
            + ("; upgrade dplc" if version > FORMAT_VERSION else "")
        )
    return version, mode_code, name_len


def _check_length_and_crc(data: bytes, payload_at: int, payload_len: int) -> int:
    """Bound the payload length by the bytes present, then check the CRC; returns its end."""
    if payload_len > MAX_PAYLOAD:
        raise LengthError(f"payload length {payload_len} exceeds the limit of {MAX_PAYLOAD} bytes")
    end = payload_at + payload_len
    if len(data) < end + _CRC.size:
        raise LengthError(
            f"truncated file: payload length {payload_len} runs past the end of the file "
            f"({len(data)} bytes, {end + _CRC.size} needed)"
        )
    if len(data) > end + _CRC.size:
        raise LengthError(f"trailing data: {len(data) - end - _CRC.size} bytes after the checksum")
    (crc,) = _CRC.unpack_from(data, end)
    actual = zlib.crc32(data[:end])
    if crc != actual:
        raise ChecksumError(
            f"CRC mismatch: the file says {crc:08x}, its bytes give {actual:08x}; it is corrupt"
        )
    return end


def _check_fields(h: Header, mode_code: int, grid: int, name_len: int) -> None:
    """Range checks of every header field (the code's geometry, this module's limits)."""

    def bad(what: str) -> HeaderFieldError:
        return HeaderFieldError(f"bad header field: {what}")

    if name_len == 0:
        raise bad("empty model name")
    if mode_code >= len(MODES):
        raise bad(
            f"coding mode {mode_code} (0 = ans, 1 = fixed"
            + ("; bit 1: shared noise)" if h.version >= SHARED_NOISE_VERSION else ")")
        )
    if not 1 <= h.count <= MAX_IMAGES:
        raise bad(f"image count {h.count} (1..{MAX_IMAGES})")
    if h.image_size not in IMAGE_SIZES:
        raise bad(f"network image size {h.image_size} (one of {IMAGE_SIZES})")
    if not (1 <= h.height <= h.image_size and 1 <= h.width <= h.image_size):
        raise bad(f"image size {h.height}x{h.width} (1..{h.image_size} each)")
    if h.channels not in CHANNELS:
        raise bad(f"channels {h.channels} (1 or 3)")
    if not 2 <= h.levels <= MAX_LEVELS:
        raise bad(f"quantizer levels {h.levels} (2..{MAX_LEVELS})")
    if h.code_channels > MAX_CODE_CHANNELS:
        raise bad(f"code channels {h.code_channels} (0..{MAX_CODE_CHANNELS})")
    if grid != CODE_GRID:
        raise bad(f"code grid {grid} (must be {CODE_GRID})")
    if h.count * h.code_channels * CODE_GRID * CODE_GRID > MAX_SYMBOLS:
        raise bad(f"{h.count} images x {h.code_channels} channels exceed {MAX_SYMBOLS} symbols")
    if h.mode == "fixed":
        expected = (packed_bits(h.count, h.code_channels, h.levels) + 7) // 8
        if h.payload_length != expected:
            raise bad(f"fixed-length payload of {h.payload_length} bytes, expected {expected}")
    elif (h.code_channels == 0) != (h.payload_length == 0):
        raise bad(f"ANS payload of {h.payload_length} bytes for {h.code_channels} code channels")


class SharedNoiseError(ValueError):
    """A decode of a shared-noise file with another seed than its own was asked for."""


def check_seed(header: Header, seed: int | None) -> None:
    """Refuse another seed than the header's for a file whose noise is shared with its encoder."""
    if header.shared_noise and seed is not None and int(seed) % (1 << 64) != header.seed:
        raise SharedNoiseError(
            "this file's decoder noise is shared with its encoder: decoding with another seed "
            "gives a wrong image, not another sample"
        )


def read_header(data: bytes) -> Header:
    """Parse and verify a whole file (CRC included) and return its header."""
    return unpack(data)[0]


def check_model(
    header: Header, weights_sha256: str, geometry: tuple[int, int, int, int]
) -> None:
    """Refuse a file made by another model: the weights hash and the geometry
    ``(image size, channels, levels, code channels)`` must match the header's."""
    if weights_sha256 != header.weights_sha256:
        raise ModelMismatchError(
            f"model mismatch: the file was made by {header.model_name!r} version "
            f"{header.model_version} (weights {header.weights_sha256[:12]}), but the given "
            f"model's weights are {weights_sha256[:12]}"
        )
    expected = (header.image_size, header.channels, header.levels, header.code_channels)
    if tuple(geometry) != expected:
        raise ModelMismatchError(
            f"model mismatch: the file needs (size, channels, levels, C) = {expected}, "
            f"the model has {tuple(geometry)}"
        )


__all__ = [
    "BadMagicError", "BitstreamError", "ChecksumError", "Header", "HeaderFieldError",
    "LengthError", "ModelMismatchError", "PayloadError", "SharedNoiseError", "ShortFileError",
    "SymbolRangeError", "UnsupportedVersionError", "check_model", "check_seed", "pack",
    "read_header", "unpack",
]
