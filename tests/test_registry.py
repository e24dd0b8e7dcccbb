"""The MLflow registry of codecs (dplc.registry), against a temporary SQLite store."""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
from test_bitstream import fitted_entropy, fixed_images, tiny_codec

from dplc import registry
from dplc.files import compress, decompress
from dplc.registry import ModelNotFoundError, load_codec

DPLC = Path(__file__).parents[1] / "dplc"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    """A SQLite store with model 'tiny': v1 (alias champion) and v2 (other weights)."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    folders = []
    for seed in (0, 1):
        codec = tiny_codec(seed=seed)
        folder = root / f"codec{seed}"
        codec.save(folder)
        fitted_entropy(codec).save(folder)
        folders.append(folder)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        experiment = mlflow.create_experiment("codecs", artifact_location=str(root / "artifacts"))
        with mlflow.start_run(experiment_id=experiment):
            infos = [
                registry.log_codec(folder, name=f"codec{i}") for i, folder in enumerate(folders)
            ]
            v1 = registry.register(infos[0].model_uri, "tiny", alias="champion")
            v2 = registry.register(infos[1].model_uri, "tiny", alias=None)
        yield {"uri": uri, "root": root, "folders": folders, "versions": (v1, v2), "infos": infos}


def test_alias_and_version_resolve_to_the_logged_codecs(store) -> None:
    v1, v2 = store["versions"]
    assert (int(v1.version), int(v2.version)) == (1, 2)
    b = load_codec("models:/tiny@champion", store["uri"])
    codec, entropy, name, version = b.codec, b.entropy, b.name, b.version
    assert (name, version) == ("tiny", 1)
    assert codec.weights_hash() == tiny_codec(seed=0).weights_hash()
    assert entropy == fitted_entropy(codec)
    b2 = load_codec("models:/tiny/2", store["uri"])
    codec2, name2, version2 = b2.codec, b2.name, b2.version
    assert (name2, version2) == ("tiny", 2)
    assert codec2.weights_hash() == tiny_codec(seed=1).weights_hash()


def test_default_tracking_uri_is_mlflows_env_var(store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store["uri"])
    b = load_codec("models:/tiny@champion")
    assert (b.name, b.version) == ("tiny", 1)


def test_local_folders_load_too(store, tmp_path: Path) -> None:
    b = load_codec(str(store["folders"][0]))
    codec, entropy, name, version = b.codec, b.entropy, b.name, b.version
    assert (name, version) == ("codec0", 0)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri="models:/tiny/1", dst_path=str(tmp_path), tracking_uri=store["uri"]
    )
    b2 = load_codec(local)  # an exported MLflow model folder
    exported, entropy2 = b2.codec, b2.entropy
    assert exported.weights_hash() == codec.weights_hash() and entropy2 == entropy
    # a model "from code": the logged model holds no pickle at all
    assert not list(Path(local).rglob("*.pkl")) and list(Path(local).rglob("mlflow_model.py"))


def test_logged_metadata_and_pyfunc_predict(store) -> None:
    info = store["infos"][0]
    codec = tiny_codec(seed=0)
    assert info.metadata["weights_sha256"] == codec.weights_hash()
    assert info.metadata["entropy_id"] == fitted_entropy(codec).model_id
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", store["uri"])
        model = mlflow.pyfunc.load_model("models:/tiny@champion")
    images = fixed_images(2)
    out = model.predict(images, params={"seed": 3})
    entropy = fitted_entropy(codec)
    expected = decompress(compress(codec, entropy, images, "x", 0, seed=3), codec, entropy)
    assert np.array_equal(out, expected)


@pytest.mark.parametrize(
    "uri, words",
    [
        ("models:/tiny@nope", "alias nope not found"),
        ("models:/nope@champion", "not found"),
        ("models:/tiny/9", "version=9"),
        ("models:/tiny", "bad model URI"),
        ("models:/tiny@a@b", "bad model URI"),
    ],
)
def test_unknown_models_raise_model_not_found(store, uri: str, words: str) -> None:
    with pytest.raises(ModelNotFoundError, match=re.escape(words)):
        load_codec(uri, store["uri"])


def test_missing_store_and_folders_are_reported(tmp_path: Path) -> None:
    db = tmp_path / "absent.db"
    with pytest.raises(ModelNotFoundError, match="no MLflow store"):
        load_codec("models:/tiny@champion", f"sqlite:///{db}")
    assert not db.exists()  # looking a model up never creates a store
    with pytest.raises(ModelNotFoundError, match="not a models:/ URI nor a codec folder"):
        load_codec(str(tmp_path / "nothing"))
    with pytest.raises(ModelNotFoundError, match="missing codec.json"):
        load_codec(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="entropy.json"):
        tiny_codec().save(tmp_path / "half")
        registry.log_codec(tmp_path / "half")


def test_only_the_registry_imports_mlflow() -> None:
    pattern = re.compile(r"^\s*(import mlflow|from mlflow)", re.MULTILINE)
    importers = sorted(p.name for p in DPLC.glob("*.py") if pattern.search(p.read_text()))
    assert importers == ["registry.py"]


def test_logged_model_folder_loads_without_unpickling(tmp_path):
    """A downloaded MLflow model is untrusted: its python_model.pkl must never be unpickled."""
    import torch
    import yaml as _yaml

    from dplc.codec import build_codec
    from dplc.config import NetConfig
    from dplc.entropy import EntropyModel

    torch.manual_seed(0)
    model = tmp_path / "model"
    codec = build_codec(NetConfig(width=8, latent_dim=16, code_channels=2), "map").eval()
    codec.save(model / "artifacts" / "codec")
    EntropyModel.uniform(2, 2).save(model / "artifacts" / "codec")
    (model / "python_model.pkl").write_bytes(b"\x80\x04this would explode if unpickled")
    flavor = {"python_function": {"artifacts": {"codec": {"path": "artifacts/codec"}}, "python_model": "python_model.pkl"}}
    (model / "MLmodel").write_text(_yaml.safe_dump({"flavors": flavor}))
    b = registry.load_codec(str(model))
    assert b.codec.weights_hash() == codec.weights_hash() and b.entropy.channels == 2 and b.version == 0
    flavor["python_function"]["artifacts"]["codec"]["path"] = "../../etc"
    (model / "MLmodel").write_text(_yaml.safe_dump({"flavors": flavor}))
    with pytest.raises(registry.ModelNotFoundError, match="leaves the model folder"):
        registry.load_codec(str(model))
