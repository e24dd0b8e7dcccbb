"""Command line: compress images with a registered codec, decompress, inspect.

::

    python -m dplc.compress compress INPUT... -o OUT.dplc --model URI [--seed S]
                                     [--fixed-length] [--resize] [--grayscale]
    python -m dplc.compress decompress FILE.dplc -o DIR [--seed S] [--samples K] [--model URI]
                                       [--precision fp32|bf16]
    python -m dplc.compress info FILE.dplc [--json]

``URI`` is ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` (resolved in the MLflow store given
by ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``) or a local codec folder (``codec.json``,
``weights.safetensors``, ``entropy.json``). Inputs are PNG/JPEG/... files, folders of them
(sorted, not recursive) or ``.npy`` uint8 batches (N, H, W) or (N, H, W, C); all of them go
into one file. Images smaller than the network (Fashion-MNIST's 28x28 for the 32x32 nets) are
zero-padded and cropped back on decode. Images must share one size no larger than the network's
and have the model's channel count, unless ``--resize`` (to the network's size) or
``--grayscale`` (colour to one channel) says to convert them.

``compress`` entropy codes the symbols with the model's ANS probability model, or bit-packs
them where that is smaller (``--fixed-length`` always bit-packs: the paper's rate).
``decompress`` decodes with the model named in the header unless ``--model`` is given, with
the header's noise seed unless ``--seed`` is; ``--samples K`` writes K decodes per image with
seeds S, S+1, ..., S+K-1 (``00000.png`` for K = 1, ``00000-k.png`` otherwise).

Outputs appear atomically (a temporary file or folder, then a rename), so a failed run leaves
nothing behind. Exit status: 0 success, 2 bad input (one line ``error: ...`` on stderr, no
traceback), 1 anything else.

>>> main(["info", "no-such-file.dplc"])  # doctest: +SKIP
error: no-such-file.dplc: no such file or directory
2
>>> args = build_parser().parse_args(["decompress", "a.dplc", "-o", "out", "--samples", "4"])
>>> args.command, args.samples, args.seed, args.precision
('decompress', 4, None, 'fp32')
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dplc import folder
from dplc.bitstream import BitstreamError, Header, check_model, decode_payload, read_header, unpack
from dplc.pixels import IMAGE_SUFFIXES, ImageInputError

BACKENDS = ("auto", "onnx", "torch")
"""``onnx``: ONNX Runtime (:mod:`dplc.runtime`, no torch); ``torch``: the reference codec
(:mod:`dplc.files`); ``auto``: ONNX Runtime where the codec has an ONNX export and the file is
format 2, torch otherwise."""

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UserError(Exception):
    """Bad input from the user: reported as one ``error:`` line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as a :class:`UserError` (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see {self.prog} --help)")


# ----------------------------------------------------------------------------- inputs


def _luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, PIL's convert("L") formula, for uint8 (..., 3) arrays."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 299 + g * 587 + b * 114 + 500) // 1000).astype(np.uint8)


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    mode = "L" if image.shape[-1] == 1 else "RGB"
    im = Image.fromarray(image[..., 0] if mode == "L" else image, mode)
    out = np.asarray(im.resize((size, size), Image.BICUBIC), dtype=np.uint8)
    return out.reshape(size, size, image.shape[-1])


def _read_picture(path: Path, channels: int, grayscale: bool) -> np.ndarray:
    """One image file -> uint8 (H, W, channels), refusing a wrong mode unless told to convert."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            want = "L" if channels == 1 else "RGB"
            if im.mode != want:
                if channels == 1 and grayscale:
                    im = im.convert("L")
                else:
                    hint = "; pass --grayscale to convert it" if channels == 1 else ""
                    raise UserError(
                        f"{path}: image mode {im.mode}, the model takes {want} "
                        f"({channels}-channel) images{hint}"
                    )
            arr = np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise UserError(f"{path}: not an image ({type(e).__name__}: {e})") from e
    return arr.reshape(arr.shape[0], arr.shape[1], channels)


def _read_npy(path: Path, channels: int, grayscale: bool) -> list[np.ndarray]:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: not a readable .npy file ({e})") from e
    if arr.dtype != np.uint8:
        raise UserError(f"{path}: .npy images must be uint8, got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4 or arr.shape[0] == 0:
        raise UserError(f"{path}: .npy images must be (N, H, W) or (N, H, W, C), got {arr.shape}")
    if arr.shape[-1] != channels:
        if channels == 1 and arr.shape[-1] == 3 and grayscale:
            arr = _luminance(arr)[..., None]
        else:
            hint = (
                "; pass --grayscale to convert it" if channels == 1 and arr.shape[-1] == 3 else ""
            )
            raise UserError(
                f"{path}: images have {arr.shape[-1]} channels, the model takes {channels}{hint}"
            )
    return list(arr)


def _expand(inputs: Sequence[str]) -> list[Path]:
    files: list[Path] = []
    for name in inputs:
        p = Path(name)
        if p.is_dir():
            found = sorted(
                q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise UserError(f"{p}: directory holds no images ({', '.join(IMAGE_SUFFIXES)})")
            files += found
        elif not p.exists():
            raise UserError(f"{p}: no such file or directory")
        elif not p.is_file():
            raise UserError(f"{p}: not a regular file")
        elif p.stat().st_size == 0:
            raise UserError(f"{p}: empty file")
        else:
            files.append(p)
    return files


def load_images(
    inputs: Sequence[str], channels: int, size: int, resize: bool, grayscale: bool
) -> np.ndarray:
    """Read every input into one uint8 batch (N, H, W, channels) of one size ≤ ``size``."""
    images: list[np.ndarray] = []
    origins: list[Path] = []
    for path in _expand(inputs):
        if path.suffix.lower() == ".npy":
            batch = _read_npy(path, channels, grayscale)
        else:
            batch = [_read_picture(path, channels, grayscale)]
        images += batch
        origins += [path] * len(batch)
    if resize:
        images = [im if im.shape[:2] == (size, size) else _resize(im, size) for im in images]
    first = images[0].shape[:2]
    for im, path in zip(images, origins, strict=True):
        h, w = im.shape[:2]
        if h > size or w > size:
            raise UserError(
                f"{path}: image is {h}x{w}, the model takes at most {size}x{size}; "
                "pass --resize to resize it"
            )
        if (h, w) != first:
            raise UserError(
                f"{path}: image is {h}x{w} but {origins[0]} is {first[0]}x{first[1]}; "
                "one file holds images of one size (pass --resize)"
            )
    return np.stack(images)


# ---------------------------------------------------------------------------- outputs


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_pngs(out: Path, named: list[tuple[str, np.ndarray]]) -> None:
    """Write PNGs into a temporary folder beside ``out``, then move them into ``out``."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        for name, image in named:
            pic = (
                Image.fromarray(image[..., 0], "L")
                if image.shape[-1] == 1
                else Image.fromarray(image, "RGB")
            )
            pic.save(tmp / name, format="PNG")
        if not out.exists():
            os.rename(tmp, out)
            return
        for name, _ in named:
            os.replace(tmp / name, out / name)
        tmp.rmdir()
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _read_file(path: Path) -> bytes:
    if not path.exists():
        raise UserError(f"{path}: no such file or directory")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .dplc file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from e


@dataclass
class _Model:
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
def _codec_folder(uri: str, tracking_uri: str | None) -> Iterator[tuple[Path, str, int]]:
    """(folder, name, version): a local folder directly, a ``models:/`` URI via the registry."""
    if uri.startswith("models:/"):
        from dplc.registry import ModelNotFoundError, fetch

        try:
            with fetch(uri, tracking_uri) as found:
                yield found
        except ModelNotFoundError as e:
            raise UserError(str(e)) from e
        return
    path = Path(uri)
    if not path.is_dir():
        raise UserError(f"model not found: {uri} (not a models:/ URI nor a codec folder)")
    try:
        codec_dir = folder.resolve(path)
    except (FileNotFoundError, folder.NotACodecError) as e:
        raise UserError(f"model not found: {e}") from e
    yield codec_dir, path.resolve().name, 0


def _choose_backend(requested: str, codec_dir: Path, file_version: int | None) -> str:
    from dplc.runtime import has_onnx

    onnx_ok = has_onnx(codec_dir) and importlib.util.find_spec("onnxruntime") is not None
    if requested == "onnx":
        if not has_onnx(codec_dir):
            raise UserError(
                f"{codec_dir}: the codec has no ONNX export; make it with "
                f"`python -m dplc.compress export {codec_dir}` or use --backend torch"
            )
        if file_version is not None and file_version < 2:
            raise UserError(
                f"format {file_version} files draw their noise from torch's generator; "
                "decode them with --backend torch"
            )
        return "onnx"
    if requested == "auto" and onnx_ok and (file_version is None or file_version >= 2):
        return "onnx"
    if importlib.util.find_spec("torch") is None:
        raise UserError(
            "this needs the torch decoder, and torch is not installed "
            "(pip install 'dplc[train]'), or a codec with an ONNX export"
        )
    return "torch"


@contextmanager
def _open_model(
    uri: str, tracking_uri: str | None, backend: str, file_version: int | None = None
) -> Iterator[_Model]:
    with _codec_folder(uri, tracking_uri) as (codec_dir, name, version):
        chosen = _choose_backend(backend, codec_dir, file_version)
        try:
            if chosen == "onnx":
                from dplc.runtime import RuntimeCodec, RuntimeUnavailableError

                try:
                    codec = RuntimeCodec(codec_dir)
                except RuntimeUnavailableError as e:
                    raise UserError(str(e)) from e
                entropy = codec.entropy
            else:
                from dplc.codec import Codec
                from dplc.entropy import load_entropy_model

                codec, entropy = Codec.load(codec_dir), load_entropy_model(codec_dir)
        except (ValueError, KeyError) as e:  # malformed codec.json / entropy.json / weights
            raise UserError(f"model at {uri} cannot be loaded: {e}") from e
        yield _Model(chosen, codec, entropy, name, version, codec.net.channels, codec.net.image_size)


def _check_output_file(out: Path) -> None:
    if out.is_dir():
        raise UserError(f"{out}: is a directory, expected an output file name")


def _check_output_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory")


# --------------------------------------------------------------------------- commands


def cmd_compress(args: argparse.Namespace) -> int:
    out = Path(args.output)
    _check_output_file(out)
    if not 0 <= args.seed < 1 << 64:
        raise UserError(f"--seed must be in [0, 2**64), got {args.seed}")
    with _open_model(args.model, args.tracking_uri, args.backend) as model:
        images = load_images(
            args.inputs, model.channels, model.image_size, args.resize, args.grayscale
        )
        mode = "fixed" if args.fixed_length else "auto"
        try:
            if model.backend == "onnx":
                from dplc import runtime

                data = runtime.compress(model.codec, images, model.name, model.version, args.seed, mode)
            else:
                from dplc.files import compress

                data = compress(
                    model.codec, model.entropy, images, model.name, model.version, args.seed, mode
                )
        except ImageInputError as e:
            raise UserError(str(e)) from e
    _write_atomic(out, data)
    h = read_header(data)
    print(
        f"{out}: {h.count} image(s), {len(data)} bytes "
        f"({8 * h.payload_length / h.count:.1f} payload bits per image, {h.mode}), "
        f"model {model.name} v{model.version} ({model.backend})"
    )
    return EXIT_OK


def _decode(model: _Model, header: Header, symbols: np.ndarray, seed: int, precision: str) -> np.ndarray:
    if model.backend == "onnx":
        from dplc.runtime import decode_images

        return decode_images(header, symbols, model.codec, seed)
    from dplc.files import decode_images

    return decode_images(header, symbols, model.codec, seed, precision)


def cmd_decompress(args: argparse.Namespace) -> int:
    path, out = Path(args.input), Path(args.output)
    _check_output_dir(out)
    if args.samples < 1:
        raise UserError(f"--samples must be >= 1, got {args.samples}")
    data = _read_file(path)
    try:
        header, payload = unpack(data)
    except BitstreamError as e:
        raise UserError(f"{path}: {e}") from e
    uri = args.model
    if uri is None:
        if header.model_version == 0:
            raise UserError(
                f"{path}: made with the unregistered model {header.model_name!r}; pass --model"
            )
        uri = f"models:/{header.model_name}/{header.model_version}"
    backend = "torch" if args.precision == "bf16" else args.backend
    with _open_model(uri, args.tracking_uri, backend, header.version) as model:
        try:
            model.check(header)
            symbols = decode_payload(header, payload, model.entropy)
        except BitstreamError as e:
            raise UserError(f"{path}: {e}") from e
        base = header.seed if args.seed is None else args.seed
        named: list[tuple[str, np.ndarray]] = []
        for k in range(args.samples):
            images = _decode(model, header, symbols, (base + k) % (1 << 64), args.precision)
            for i, image in enumerate(images):
                named.append((f"{i:05d}.png" if args.samples == 1 else f"{i:05d}-{k}.png", image))
    _write_pngs(out, named)
    print(f"{out}: {len(named)} PNG(s) from {header.count} image(s), seed {base} ({model.backend})")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    with _codec_folder(args.model, args.tracking_uri) as (codec_dir, _, version):
        if version:
            raise UserError("export writes into a local codec folder; pass the folder, not a models:/ URI")
        if importlib.util.find_spec("torch") is None:
            raise UserError("export needs torch (pip install 'dplc[train]')")
        from dplc.codec import Codec
        from dplc.onnx_export import export_onnx

        record = export_onnx(Codec.load(codec_dir), codec_dir)
    print(f"{codec_dir}: wrote {', '.join(sorted(record['files']))} and {folder.ONNX_FILE}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    path = Path(args.input)
    data = _read_file(path)
    try:
        info = read_header(data).to_dict()
    except BitstreamError as e:
        raise UserError(f"{path}: {e}") from e
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        width = max(map(len, info))
        for key, value in info.items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            print(f"{key:<{width}}  {shown}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m dplc.compress`` argument parser."""
    parser = _Parser(prog="python -m dplc.compress", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI)"
    )
    common = _Parser(add_help=False)
    common.add_argument("--tracking-uri", default=argparse.SUPPRESS, help="MLflow tracking URI")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("compress", parents=[common], help="images -> one .dplc file")
    p.add_argument(
        "inputs", nargs="+", help="image files, folders of images, or .npy uint8 batches"
    )
    p.add_argument("-o", "--output", required=True, help="the .dplc file to write")
    p.add_argument(
        "--model", required=True, help="models:/NAME@ALIAS, models:/NAME/VERSION or a codec folder"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="decoder noise seed stored in the file (default 0)"
    )
    p.add_argument(
        "--fixed-length",
        action="store_true",
        help="bit-pack symbols (the paper's rate); default: ANS, or bit-packing where smaller",
    )
    p.add_argument("--resize", action="store_true", help="resize images to the network's size")
    p.add_argument("--backend", choices=BACKENDS, default="auto", help="encoder: ONNX Runtime or torch")
    p.add_argument("--grayscale", action="store_true", help="convert colour images to one channel")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("decompress", parents=[common], help=".dplc file -> PNG images")
    p.add_argument("input", help="the .dplc file")
    p.add_argument("-o", "--output", required=True, help="folder for the PNGs (created)")
    p.add_argument(
        "--seed", type=int, default=None, help="decoder noise seed (default: the file's)"
    )
    p.add_argument("--samples", type=int, default=1, help="decodes per image, seeds S..S+K-1")
    p.add_argument("--model", default=None, help="model URI (default: the one named in the file)")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="torch decoder arithmetic (bf16 implies --backend torch)",
    )
    p.add_argument(
        "--backend", choices=BACKENDS, default="auto", help="decoder: ONNX Runtime or torch"
    )
    p.set_defaults(func=cmd_decompress)

    p = sub.add_parser("export", parents=[common], help="write a codec folder's ONNX export")
    p.add_argument("model", help="the codec folder")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", parents=[common], help="print a .dplc file's header")
    p.add_argument("input", help="the .dplc file")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 1 failure)."""
    try:
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:  # e.g. `info ... | head`: stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as e:  # noqa: BLE001 - the last resort: report, exit 1
        traceback.print_exc()
        print(f"error: internal failure: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr terse
    sys.exit(main())
