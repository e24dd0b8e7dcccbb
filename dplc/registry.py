"""The MLflow model registry for codecs: log, register, alias and load.

This is the only module of ``dplc`` that imports MLflow. A trained per-rate codec is a folder

* ``codec.json`` and ``weights.safetensors`` (:meth:`dplc.codec.Codec.save`), and
* ``entropy.json`` (:meth:`dplc.entropy.EntropyModel.save`), the ANS probability model.

Workflow (MLflow 3.17, SQLite tracking store):

1. In an active run, :func:`log_codec` logs the folder as an MLflow ``pyfunc`` model:
   :class:`CodecModel` (a ``mlflow.pyfunc.PythonModel``) carries the three files as artifacts,
   so the original classes load it back without pickled weights.
2. :func:`register` adds that model to the registry under a name and points an alias
   (e.g. ``champion``) at the new version (``mlflow.register_model`` and
   ``MlflowClient.set_registered_model_alias``).
3. :func:`load_codec` resolves ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` through
   ``MlflowClient`` (alias or version, then the version's download URI), downloads it with
   ``mlflow.artifacts.download_artifacts`` and rebuilds the codec from its JSON and safetensors
   files (never from the pickled model); a local codec folder works as well. It returns a
   :class:`~dplc.bundle.CodecBundle`, whose name and version go into every ``.dplc`` header.

The tracking URI is the ``tracking_uri`` argument, else MLflow's own ``MLFLOW_TRACKING_URI``.
A SQLite store that does not exist is reported as missing rather than created.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import mlflow.artifacts
import mlflow.pyfunc
import numpy as np
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models.signature import ModelSignature
from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

import dplc
from dplc import folder
from dplc.folder import CODEC_ARTIFACT, check_codec_dir

if TYPE_CHECKING:
    from dplc.bundle import CodecBundle
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class ModelNotFoundError(LookupError):
    """The model URI names nothing loadable (unknown name, alias, version, path or store)."""


def parse_model_uri(uri: str) -> tuple[str, str | None, str | None] | None:
    """``(name, alias, version)`` of a ``models:/`` URI; None for anything else (a path).

    >>> parse_model_uri("models:/fmnist-dplc-c4@champion")
    ('fmnist-dplc-c4', 'champion', None)
    >>> parse_model_uri("models:/fmnist-dplc-c4/3")
    ('fmnist-dplc-c4', None, '3')
    >>> parse_model_uri("runs/codec") is None
    True
    >>> parse_model_uri("models:/fmnist-dplc-c4")
    Traceback (most recent call last):
    ...
    dplc.registry.ModelNotFoundError: bad model URI 'models:/fmnist-dplc-c4': use models:/NAME@ALIAS or models:/NAME/VERSION
    """
    match = _MODELS_URI.match(uri)
    if match is None:
        if uri.startswith("models:/"):
            raise ModelNotFoundError(
                f"bad model URI {uri!r}: use models:/NAME@ALIAS or models:/NAME/VERSION"
            )
        return None
    return match["name"], match["alias"], match["version"]


class CodecModel(mlflow.pyfunc.PythonModel):
    """An MLflow ``pyfunc`` wrapper of a saved codec folder (``artifacts={"codec": folder}``).

    ``predict`` takes uint8 images (N, H, W, channels) and returns their reconstructions
    (compress and decompress through the ``.dplc`` format); ``params`` may set ``seed`` and
    ``mode`` ("ans" or "fixed").
    """

    def load_context(self, context: Any) -> None:
        from dplc.bundle import CodecBundle

        self.bundle = CodecBundle.load(Path(context.artifacts[CODEC_ARTIFACT]), name="pyfunc")

    def predict(
        self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        params = params or {}
        images = np.asarray(model_input, dtype=np.uint8)
        mode = str(params.get("mode", "ans"))
        return self.bundle.decompress(
            self.bundle.compress(images, int(params.get("seed", 0)), mode)
        )


MODEL_CODE = Path(__file__).with_name("mlflow_model.py")
"""The file MLflow stores as the model's code; it calls :func:`serve_codec_model`."""


def serve_codec_model() -> None:
    """Declare :class:`CodecModel` as the model of a "model from code" file (MLflow 3)."""
    mlflow.models.set_model(CodecModel())


def codec_signature() -> ModelSignature:
    """uint8 images (N, H, W, channels) in, reconstructions out; params ``seed`` and ``mode``."""
    images = Schema([TensorSpec(np.dtype(np.uint8), (-1, -1, -1, -1))])
    params = ParamSchema([ParamSpec("seed", "long", 0), ParamSpec("mode", "string", "ans")])
    return ModelSignature(inputs=images, outputs=images, params=params)


def log_codec(
    codec_dir: str | Path,
    name: str = "codec",
    pip_requirements: list[str] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Any:
    """Log a codec folder as a ``pyfunc`` model named ``name`` in the active run.

    Returns MLflow's ``ModelInfo`` (its ``model_uri`` is what :func:`register` takes). The
    codec's weight hash, entropy-model id, levels and code channels go into the model metadata.
    """
    from dplc.bundle import CodecBundle

    d = check_codec_dir(codec_dir)
    bundle = CodecBundle.load(d)
    codec, entropy = bundle.codec, bundle.entropy
    meta = {
        "weights_sha256": codec.weights_hash(),
        "entropy_id": entropy.model_id if entropy is not None else None,
        "code_channels": codec.net.code_channels,
        "levels": codec.net.levels,
        "image_size": codec.net.image_size,
        "channels": codec.net.channels,
        "dplc_version": dplc.__version__,
    } | dict(metadata or {})
    requirements = pip_requirements or [
        f"dplc=={dplc.__version__}",
        "torch",
        "numpy",
        "safetensors",
        "constriction>=0.4",
    ]
    return mlflow.pyfunc.log_model(
        name=name,
        python_model=str(MODEL_CODE),  # a model "from code": no pickled CodecModel is stored
        artifacts={CODEC_ARTIFACT: str(d)},
        pip_requirements=requirements,
        signature=codec_signature(),
        input_example=np.zeros((1, *codec.net.image_shape[1:], codec.net.channels), np.uint8),
        metadata=meta,
    )


def register(
    model_uri: str,
    name: str,
    alias: str | None = "champion",
    tags: dict[str, str] | None = None,
) -> Any:
    """Register ``model_uri`` (a logged model) as a new version of ``name``; set ``alias``.

    Works against the current tracking URI (``mlflow.set_tracking_uri`` or
    ``MLFLOW_TRACKING_URI``). Returns MLflow's ``ModelVersion``. Uses ``mlflow.register_model``
    and ``MlflowClient().set_registered_model_alias``.
    """
    version = mlflow.register_model(model_uri, name, tags=tags)
    if alias:
        MlflowClient().set_registered_model_alias(name, alias, version.version)
    return version


def log_and_register(
    codec_dir: str | Path, name: str, alias: str | None = "champion", artifact_name: str = "codec"
) -> Any:
    """:func:`log_codec` then :func:`register` in the active run; returns the ModelVersion."""
    info = log_codec(codec_dir, artifact_name)
    return register(info.model_uri, name, alias)


def describe_model(name: str, description: str, tags: dict[str, str] | None = None) -> None:
    """Set a registered model's description and tags (what the MLflow UI shows on its page)."""
    client = MlflowClient()
    client.update_registered_model(name, description=description)
    for key, value in (tags or {}).items():
        client.set_registered_model_tag(name, key, str(value))


def tag_version(
    name: str, version: str | int, tags: dict[str, Any], description: str | None = None
) -> None:
    """Set tags (and optionally the description) of one registered model version."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))
    if description is not None:
        client.update_model_version(name, str(version), description=description)


def version_by_alias(name: str, alias: str) -> str | None:
    """The version number an alias points at, or None when the model or alias does not exist."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _tracking_uri(tracking_uri: str | None) -> str:
    uri = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///") :])
        if not path.is_file():
            raise ModelNotFoundError(
                f"no MLflow store at {uri} (file missing); pass --tracking-uri or set MLFLOW_TRACKING_URI"
            )
    return uri


@contextmanager
def fetch(uri: str, tracking_uri: str | None = None) -> Iterator[tuple[Path, str, int]]:
    """``(codec folder, name, version)`` of ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or
    a local folder, checked (:func:`dplc.folder.resolve`); a registered version is downloaded
    into a temporary folder that lives as long as the context. Loads no torch.
    """
    parsed = parse_model_uri(uri)
    if parsed is None:
        try:
            found = folder.local(uri)
        except folder.NotACodecError as e:
            raise ModelNotFoundError(str(e)) from e
        yield found
        return
    store = _tracking_uri(tracking_uri)
    name, alias, version = parsed
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias is not None
            else client.get_model_version(name, version)
        )
    except MlflowException as e:
        reason = str(e.message).splitlines()[0]
        raise ModelNotFoundError(f"model not found: {uri} in {store}: {reason}") from e
    # the version's storage location, resolved by this store's client: a ``models:/`` artifact
    # URI would be resolved against the global registry URI instead of ``store``
    location = client.get_model_version_download_uri(name, mv.version)
    with tempfile.TemporaryDirectory(prefix="dplc-model-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=tmp, tracking_uri=store
        )
        try:
            codec_dir = folder.resolve(Path(local))
        except (FileNotFoundError, folder.NotACodecError) as e:
            raise ModelNotFoundError(f"model {uri} is not a dplc codec: {e}") from e
        yield codec_dir, name, int(mv.version)


def load_codec(uri: str, tracking_uri: str | None = None) -> CodecBundle:
    """The :class:`~dplc.bundle.CodecBundle` of ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``
    or a local codec folder (named after its folder, version 0).

    Raises :class:`ModelNotFoundError` with MLflow's reason when nothing matches.
    """
    from dplc.bundle import CodecBundle

    with fetch(uri, tracking_uri) as (codec_dir, name, version):
        try:
            return CodecBundle.load(codec_dir, name, version)
        except (ValueError, KeyError, FileNotFoundError) as e:  # malformed description/weights
            raise ModelNotFoundError(f"model at {uri} cannot be loaded: {e}") from e
