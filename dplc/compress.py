"""Command line: compress images with a registered codec, decompress, inspect.

::

    python -m dplc.compress compress INPUT... -o OUT.dplc --model URI [--seed S]
                                     [--fixed-length] [--resize] [--grayscale] [--backend B]
    python -m dplc.compress decompress FILE.dplc -o DIR [--seed S] [--samples K] [--model URI]
                                       [--precision fp32|bf16] [--backend B]
    python -m dplc.compress info FILE.dplc [--json]
    python -m dplc.compress export CODEC_FOLDER

``URI`` is ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` (resolved in the MLflow store given
by ``--tracking-uri`` or ``MLFLOW_TRACKING_URI``) or a local codec folder (``codec.json``,
``weights.safetensors``, ``entropy.json``). Inputs are PNG/JPEG/... files, folders of them
(sorted, not recursive) or ``.npy`` uint8 batches (N, H, W) or (N, H, W, C); all of them go
into one file. Images smaller than the network (Fashion-MNIST's 28x28 for the 32x32 nets) are
zero-padded and cropped back on decode. Images must share one size no larger than the network's
and have the model's channel count, unless ``--resize`` (to the network's size) or
``--grayscale`` (colour to one channel) says to convert them.

``--backend`` (:data:`dplc.opened.BACKENDS`) is ``auto`` by default: ONNX Runtime where the
codec folder has its ONNX export (:mod:`dplc.runtime`; no torch is imported), the torch
reference codec otherwise; ``export`` writes a codec folder's ONNX export (needs torch).

``compress`` entropy codes the symbols with the model's ANS probability model, or bit-packs
them where that is smaller (``--fixed-length`` always bit-packs: the paper's rate).
``decompress`` decodes with the model named in the header unless ``--model`` is given, with
the header's noise seed unless ``--seed`` is; ``--samples K`` writes K decodes per image with
seeds S, S+1, ..., S+K-1 (``00000.png`` for K = 1, ``00000-k.png`` otherwise). A file whose
noise is shared with its encoder (``dplc_shared``; ``info`` shows ``shared_noise``) refuses
``--seed`` and ``--samples``: another seed decodes a wrong image, not another sample. Its seed
is drawn at random per file unless ``compress --seed`` gives one.

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
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dplc import folder
from dplc.bitstream import BitstreamError, Header, read_header, unpack
from dplc.image_io import ImageFileError, load_images, read_file, write_atomic, write_pngs
from dplc.opened import BACKENDS, OpenedCodec, OpenError, codec_folder, open_codec
from dplc.payload import decode_payload
from dplc.pixels import ImageInputError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UserError(Exception):
    """Bad input from the user: reported as one ``error:`` line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as a :class:`UserError` (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UserError(f"{message} (see {self.prog} --help)")


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
    if args.seed is not None and not 0 <= args.seed < 1 << 64:
        raise UserError(f"--seed must be in [0, 2**64), got {args.seed}")
    with open_codec(args.model, args.tracking_uri, args.backend) as model:
        images = load_images(
            args.inputs, model.channels, model.image_size, args.resize, args.grayscale
        )
        mode = "fixed" if args.fixed_length else "auto"
        try:
            if model.backend == "onnx":
                from dplc import runtime

                seed = 0 if args.seed is None else args.seed  # the ONNX path: private noise only
                data = runtime.compress(model.codec, images, model.name, model.version, seed, mode)
            else:
                from dplc.files import compress

                data = compress(
                    model.codec, model.entropy, images, model.name, model.version, args.seed, mode
                )
        except ImageInputError as e:
            raise UserError(str(e)) from e
    write_atomic(out, data)
    h = read_header(data)
    print(
        f"{out}: {h.count} image(s), {len(data)} bytes "
        f"({8 * h.payload_length / h.count:.1f} payload bits per image, {h.mode}), "
        f"model {model.name} v{model.version} ({model.backend})"
    )
    return EXIT_OK


def _decode(model: OpenedCodec, header: Header, symbols: np.ndarray, seed: int, precision: str) -> np.ndarray:
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
    data = read_file(path)
    try:
        header, payload = unpack(data)
    except BitstreamError as e:
        raise UserError(f"{path}: {e}") from e
    if header.shared_noise and (args.seed is not None or args.samples > 1):
        raise UserError(
            f"{path}: its decoder noise is shared with the encoder; --seed and --samples would "
            "decode wrong images, not other samples"
        )
    uri = args.model
    if uri is None:
        if header.model_version == 0:
            raise UserError(
                f"{path}: made with the unregistered model {header.model_name!r}; pass --model"
            )
        uri = f"models:/{header.model_name}/{header.model_version}"
    backend = "torch" if args.precision == "bf16" else args.backend
    images = header.count * args.samples
    with open_codec(uri, args.tracking_uri, backend, header.version, images) as model:
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
    write_pngs(out, named)
    print(f"{out}: {len(named)} PNG(s) from {header.count} image(s), seed {base} ({model.backend})")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    with codec_folder(args.model, args.tracking_uri) as (codec_dir, _, version):
        if version:
            raise UserError("export writes into a local codec folder; pass the folder, not a models:/ URI")
        if importlib.util.find_spec("torch") is None:
            raise UserError("export needs torch (pip install 'dplc[train]')")
        from dplc.codec import Codec
        from dplc.onnx_export import export_onnx

        try:
            record = export_onnx(Codec.load(codec_dir), codec_dir)
        except ValueError as e:  # a shared-noise codec has no ONNX form
            raise UserError(f"{codec_dir}: {e}") from e
    print(f"{codec_dir}: wrote {', '.join(sorted(record['files']))} and {folder.ONNX_FILE}")
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    path = Path(args.input)
    data = read_file(path)
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
        "--seed", type=int, default=None,
        help="decoder noise seed stored in the file (default 0; random per file for shared noise)"
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
    except (UserError, ImageFileError, OpenError) as e:
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
