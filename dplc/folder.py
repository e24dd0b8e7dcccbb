"""A codec folder on disk: the files it holds, and where it sits inside a logged MLflow model.

A folder written by training holds ``codec.json`` (the description), ``weights.safetensors``,
``entropy.json`` (the ANS probability model) and, for decoders without torch, the ONNX export
(``onnx.json``, ``decoder.onnx``, ``encoder.onnx``; :mod:`dplc.onnx_export`). Registered
models carry the folder as the ``codec`` artifact of an MLflow ``pyfunc`` model. Reading either
needs neither torch nor MLflow, and never unpickles anything.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     check_codec_dir(d)
Traceback (most recent call last):
...
FileNotFoundError: ... is not a complete codec folder: missing codec.json, weights.safetensors, entropy.json
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dplc.entropy import ENTROPY_FILE

CODEC_FILE = "codec.json"
WEIGHTS_FILE = "weights.safetensors"
CODEC_FILES = (CODEC_FILE, WEIGHTS_FILE, ENTROPY_FILE)
ONNX_FILE = "onnx.json"
ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
CODEC_ARTIFACT = "codec"
"""The name of the codec folder among a logged model's artifacts."""


class NotACodecError(LookupError):
    """A folder is an MLflow model but not a dplc codec, or its artifact path is unsafe."""


def check_codec_dir(codec_dir: str | Path) -> Path:
    """The folder, after checking that it holds the three codec files."""
    d = Path(codec_dir)
    missing = [f for f in CODEC_FILES if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{d} is not a complete codec folder: missing {', '.join(missing)}")
    return d


def codec_artifact(model_dir: Path) -> Path:
    """The codec folder inside a logged pyfunc model, read from its MLmodel file.

    The model's ``python_model.pkl`` (if any) is never unpickled (a downloaded model is
    untrusted): the codec is rebuilt from its JSON, safetensors and ONNX artifacts only.
    """
    meta = yaml.safe_load((model_dir / "MLmodel").read_text()) or {}
    pyfunc = (meta.get("flavors") or {}).get("python_function") or {}
    artifact = ((pyfunc.get("artifacts") or {}).get(CODEC_ARTIFACT) or {}).get("path")
    if not artifact:
        raise NotACodecError(
            f"{model_dir} is an MLflow model but not a dplc codec (no '{CODEC_ARTIFACT}' artifact)"
        )
    folder = (model_dir / artifact).resolve()
    if model_dir.resolve() not in folder.parents:
        raise NotACodecError(
            f"{model_dir}: the codec artifact path {artifact!r} leaves the model folder"
        )
    return folder


def resolve(path: str | Path) -> Path:
    """A codec folder, or the codec folder inside an MLflow model folder, checked."""
    p = Path(path)
    if (p / "MLmodel").is_file():
        p = codec_artifact(p)
    return check_codec_dir(p)


def local(uri: str) -> tuple[Path, str, int]:
    """``(codec folder, name, 0)`` of a local folder given as a model URI (version 0: not from a
    registry), or :class:`NotACodecError` saying why it is not one."""
    path = Path(uri)
    if not path.is_dir():
        raise NotACodecError(f"model not found: {uri} (not a models:/ URI nor a codec folder)")
    try:
        return resolve(path), path.resolve().name, 0
    except (FileNotFoundError, NotACodecError) as e:
        raise NotACodecError(f"model not found: {e}") from e
