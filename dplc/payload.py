"""The payload of a ``.dplc`` file: the symbols, ANS-coded with the codec's entropy model or
bit-packed at ``ceil(log2 L)`` bits each (:mod:`dplc.entropy`).

Decoding maps every failure of the coder to a :class:`dplc.bitstream.BitstreamError`
subclass, so a corrupt or forged payload is one clear error, never a crash.
"""

from __future__ import annotations

import numpy as np

from dplc.bitstream import (
    FORMAT_VERSION,
    MODES,
    SHARED_NOISE_VERSION,
    Header,
    ModelMismatchError,
    PayloadError,
    SymbolRangeError,
    pack,
)
from dplc.entropy import (
    EntropyModel,
    PayloadDecodeError,
    SymbolOutOfRangeError,
    ans_decode,
    ans_encode,
    pack_fixed,
    unpack_fixed,
)


def encode_payload(
    symbols: np.ndarray, levels: int, mode: str, entropy: EntropyModel | None
) -> bytes:
    """Symbols (N, C, 4, 4) -> payload bytes in ``mode`` ("ans" needs the entropy model)."""
    if mode == "fixed":
        return pack_fixed(symbols, levels)
    if mode != "ans":
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if entropy is None:
        raise ValueError("ANS mode needs an entropy model")
    return ans_encode(symbols, entropy)


def decode_payload(header: Header, payload: bytes, entropy: EntropyModel | None) -> np.ndarray:
    """Payload -> symbols (N, C, 4, 4) uint8, mapping every failure to a BitstreamError."""
    try:
        if header.mode == "fixed":
            return unpack_fixed(payload, header.count, header.code_channels, header.levels)
        if entropy is None:
            raise ModelMismatchError("model mismatch: an ANS-coded file needs its entropy model")
        _check_entropy(header, entropy)
        return ans_decode(payload, entropy, header.count)
    except SymbolOutOfRangeError as e:
        raise SymbolRangeError(f"symbol out of range: {e}") from e
    except PayloadDecodeError as e:
        raise PayloadError(f"corrupt payload: {e}") from e


def choose_payload(
    symbols: np.ndarray, levels: int, mode: str, entropy_model: EntropyModel | None
) -> tuple[str, bytes]:
    """``(mode, payload)``; ``mode="auto"`` takes ANS or bit-packing, whichever is smaller."""
    if mode != "auto":
        return mode, encode_payload(symbols, levels, mode, entropy_model)
    fixed = encode_payload(symbols, levels, "fixed", None)
    if entropy_model is None:
        return "fixed", fixed
    ans = encode_payload(symbols, levels, "ans", entropy_model)
    return ("ans", ans) if len(ans) < len(fixed) else ("fixed", fixed)


def _check_entropy(header: Header, entropy: EntropyModel) -> None:
    if entropy.model_id != header.entropy_id or entropy.channels != header.code_channels:
        raise ModelMismatchError(
            f"model mismatch: the file was entropy coded with model {header.entropy_id}, "
            f"the given entropy model is {entropy.model_id}"
        )


def write_file(
    symbols: np.ndarray,
    image_shape: tuple[int, int, int],
    geometry: tuple[int, int, int, int],
    model_name: str,
    model_version: int,
    weights_sha256: str,
    entropy: EntropyModel | None,
    seed: int,
    mode: str,
    shared_noise: bool = False,
) -> bytes:
    """Symbols (N, C, 4, 4) of images (H, W, channels) -> the bytes of a format-2 file (format 3
    with ``shared_noise``: the symbols were encoded knowing the decoder's noise for ``seed``).

    ``geometry`` is the codec's (image size, channels, levels, code channels), as
    :func:`dplc.bitstream.check_model` takes it; ``mode`` as :func:`choose_payload`. Both the
    torch path (:mod:`dplc.files`) and the torch-free one (:mod:`dplc.runtime`) write with it.
    """
    size, _, levels, code_channels = geometry
    mode, payload = choose_payload(symbols, levels, mode, entropy)
    h, w, c = image_shape
    header = Header(
        model_name=model_name,
        model_version=int(model_version),
        weights_sha256=weights_sha256,
        entropy_id=entropy.model_id if entropy is not None else "0" * 16,
        count=symbols.shape[0],
        height=h,
        width=w,
        channels=c,
        image_size=size,
        levels=levels,
        code_channels=code_channels,
        mode=mode,
        seed=int(seed),
        version=SHARED_NOISE_VERSION if shared_noise else FORMAT_VERSION,
        shared_noise=shared_noise,
    )
    return pack(header, payload)
