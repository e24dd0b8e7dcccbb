"""A codec opened by URI for one backend: ONNX Runtime (:mod:`dplc.runtime`) or torch.

A URI is ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` (fetched from the MLflow registry:
needs ``dplc[tracking]``) or a local codec folder. ``auto`` takes ONNX Runtime where the codec
has its export and the file is format 2, torch otherwise; the ONNX path imports no torch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dplc import folder
from dplc.bitstream import Header, check_model

BACKENDS = ("auto", "onnx", "torch")
"""``onnx``: ONNX Runtime (:mod:`dplc.runtime`, no torch); ``torch``: the reference codec
(:mod:`dplc.files`); ``auto``: ONNX Runtime where the codec has an ONNX export and the file is
format 2, unless the decode is large enough for the fused torch decoder to win back its import
(:data:`TORCH_FROM_IMAGES`), torch otherwise."""

TORCH_FROM_IMAGES = 8192
"""Decodes of at least this many images go to the fused torch decoder when torch is installed:
torch's slower import is paid back by its faster decoder from about this many images
(``reports/bench/product.json``, ``decode_images_per_s_*``; reports/design_measurements.md)."""


class OpenError(LookupError):
    """The model cannot be found, loaded or run by the requested backend (exit status 2)."""


@dataclass
class OpenedCodec:
    """A codec ready for the command line, run by one backend."""

    backend: str
    codec: Any  # dplc.runtime.RuntimeCodec or dplc.codec.Codec
    entropy: Any
    name: str
    version: int
    channels: int
    image_size: int

    def check(self, header: Header) -> None:
        if self.backend == "onnx":
            check_model(header, self.codec.weights_sha256, self.codec.geometry)
        else:
            from dplc.files import geometry

            check_model(header, self.codec.weights_hash(), geometry(self.codec))


@contextmanager
def codec_folder(uri: str, tracking_uri: str | None) -> Iterator[tuple[Path, str, int]]:
    """(folder, name, version): a local folder directly, a ``models:/`` URI via the registry."""
    if uri.startswith("models:/"):
        from dplc.registry import ModelNotFoundError, fetch

        try:
            with fetch(uri, tracking_uri) as found:
                yield found
        except ModelNotFoundError as e:
            raise OpenError(str(e)) from e
        return
    try:
        found = folder.local(uri)
    except folder.NotACodecError as e:
        raise OpenError(str(e)) from e
    yield found


def _choose_backend(
    requested: str, codec_dir: Path, file_version: int | None, images: int = 0
) -> str:
    from dplc.runtime import has_onnx

    onnx_ok = has_onnx(codec_dir) and importlib.util.find_spec("onnxruntime") is not None
    if requested == "onnx":
        if not has_onnx(codec_dir):
            raise OpenError(
                f"{codec_dir}: the codec has no ONNX export; make it with "
                f"`python -m dplc.compress export {codec_dir}` or use --backend torch"
            )
        if file_version is not None and file_version < 2:
            raise OpenError(
                f"format {file_version} files draw their noise from torch's generator; "
                "decode them with --backend torch"
            )
        return "onnx"
    have_torch = importlib.util.find_spec("torch") is not None
    big = have_torch and images >= TORCH_FROM_IMAGES  # the fused torch decoder wins it back
    if requested == "auto" and onnx_ok and (file_version is None or file_version >= 2) and not big:
        return "onnx"
    if not have_torch:
        raise OpenError(
            "this needs the torch decoder, and torch is not installed "
            "(pip install 'dplc[train]'), or a codec with an ONNX export"
        )
    return "torch"


@contextmanager
def open_codec(
    uri: str, tracking_uri: str | None, backend: str, file_version: int | None = None,
    images: int = 0,
) -> Iterator[OpenedCodec]:
    """The codec of ``uri`` opened for ``backend``; ``file_version`` and ``images`` (the decodes
    to come) inform ``auto``'s choice."""
    with codec_folder(uri, tracking_uri) as (codec_dir, name, version):
        chosen = _choose_backend(backend, codec_dir, file_version, images)
        try:
            if chosen == "onnx":
                from dplc.runtime import RuntimeCodec, RuntimeUnavailableError

                try:
                    codec = RuntimeCodec(codec_dir)
                except RuntimeUnavailableError as e:
                    raise OpenError(str(e)) from e
                entropy = codec.entropy
            else:
                from dplc.bundle import CodecBundle

                bundle = CodecBundle.load(codec_dir, name, version)
                codec, entropy = bundle.codec, bundle.entropy
        except (ValueError, KeyError) as e:  # malformed codec.json / entropy.json / weights
            raise OpenError(f"model at {uri} cannot be loaded: {e}") from e
        yield OpenedCodec(chosen, codec, entropy, name, version, codec.net.channels, codec.net.image_size)
