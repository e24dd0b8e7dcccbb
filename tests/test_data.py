import gzip
import json
import struct

import numpy as np
import pytest
import torch

from dplc import data, sources
from dplc.data import DataFormatError, DataNotFoundError, ImageArray


def _arr(n=5, h=28, w=28, c=1, seed=0):
    rng = np.random.default_rng(seed)
    return ImageArray(rng.integers(0, 256, (n, h, w, c), dtype=np.uint8), rng.integers(0, 10, n))


def test_shards_round_trip_with_manifest(tmp_path):
    splits = {"train": _arr(7), "test": _arr(3, seed=1)}
    manifest = data.write_shards(tmp_path, splits, source="unit", shard_size=3)
    assert manifest["counts"] == {"train": 7, "test": 3}
    assert len([f for f in manifest["files"] if f["split"] == "train"]) == 3
    for split, arr in splits.items():
        back = data.read_split(tmp_path, split, verify=True)
        assert np.array_equal(back.images, arr.images)
        assert np.array_equal(back.labels, arr.labels)
    assert len(data.read_split(tmp_path, "train", limit=4)) == 4


def test_corrupt_shard_detected(tmp_path):
    data.write_shards(tmp_path, {"train": _arr(4)}, source="unit")
    shard = next(tmp_path.glob("train-*.parquet"))
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match="does not match its checksum"):
        data.read_split(tmp_path, "train", verify=True)


def test_missing_prepared_data_says_how_to_get_it(tmp_path):
    with pytest.raises(DataNotFoundError, match="run the `prepare` stage"):
        data.read_split(tmp_path, "train")
    data.write_shards(tmp_path, {"train": _arr(2)}, source="unit")
    with pytest.raises(DataNotFoundError, match="no shards"):
        data.read_split(tmp_path, "test")


def _idx(arr: np.ndarray) -> bytes:
    return (
        struct.pack(">HBB", 0, 8, arr.ndim)
        + struct.pack(f">{arr.ndim}I", *arr.shape)
        + arr.tobytes()
    )


def test_idx_parser_bounds_lengths():
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(sources.parse_idx(_idx(arr)), arr)
    with pytest.raises(DataFormatError, match="body"):
        sources.parse_idx(_idx(arr)[:-1])
    with pytest.raises(DataFormatError, match="not an IDX"):
        sources.parse_idx(b"\x01\x02\x03\x04rest")
    with pytest.raises(DataFormatError, match="shorter"):
        sources.parse_idx(b"\x00")
    huge = struct.pack(">HBB", 0, 8, 1) + struct.pack(">I", 2**31)
    with pytest.raises(DataFormatError, match="implausible"):
        sources.parse_idx(huge)


def test_fashion_mnist_missing_gives_one_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DataNotFoundError, match="apt-get install dataset-fashion-mnist"):
        sources.load_fashion_mnist(tmp_path / "nothing", download=False)


def test_mnist_like_checksum_is_enforced(tmp_path, monkeypatch):
    monkeypatch.setenv("DPLC_CACHE", str(tmp_path))
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in sources._MNIST:
        shape = (2, 28, 28) if "images" in name else (2,)
        (folder / name).write_bytes(gzip.compress(_idx(np.zeros(shape, np.uint8))))
    with pytest.raises(DataFormatError, match="published checksum"):
        sources.load_mnist(download=False)


@pytest.mark.skipif(
    not sources.DEBIAN_FASHION_MNIST.is_dir(), reason="dataset-fashion-mnist not installed"
)
def test_debian_fashion_mnist_loads_and_verifies():
    splits = sources.load_fashion_mnist(download=False)
    assert splits["train"].images.shape == (60000, 28, 28, 1)
    assert splits["test"].images.shape == (10000, 28, 28, 1)
    assert set(np.unique(splits["test"].labels)) == set(range(10))


def test_folder_source(tmp_path):
    from PIL import Image

    for i in range(10):
        Image.fromarray(np.full((40, 50, 3), i * 20, np.uint8)).save(tmp_path / f"{i:02d}.png")
    splits = sources.load_folder(tmp_path, size=32, channels=3, test_fraction=0.2)
    assert splits["train"].images.shape == (8, 32, 32, 3) and len(splits["test"]) == 2
    assert splits["test"].images[0].mean() == pytest.approx(160, abs=1)
    with pytest.raises(DataNotFoundError, match="no images"):
        sources.load_folder(tmp_path / "empty" if (tmp_path / "empty").mkdir() is None else tmp_path)
    with pytest.raises(DataNotFoundError, match="CelebA not found"):
        sources.load_celeba(tmp_path / "celeba")


def test_celeba_and_lsun_layouts_of_synthetic_images(tmp_path):
    """The two 64x64 colour readers on files laid out as the real datasets are."""
    from dplc import synthetic

    synthetic.write_celeba_like(tmp_path / "img_align_celeba", 20, seed=0)
    celeba = sources.load_celeba(tmp_path / "img_align_celeba")
    assert celeba["train"].images.shape == (18, 64, 64, 3) and len(celeba["test"]) == 2
    assert (celeba["train"].labels == -1).all()
    synthetic.write_lsun_like(tmp_path / "bedroom_train_lmdb", 10, seed=0)
    assert (tmp_path / "bedroom_train_lmdb" / "data.mdb").is_file()
    lsun = sources.load_lsun(tmp_path / "bedroom_train_lmdb")
    assert lsun["train"].images.shape == (9, 64, 64, 3) and lsun["test"].images.shape == (1, 64, 64, 3)
    assert lsun["train"].images.std() > 10  # real pictures, not a blank decode
    assert sources.load_lsun(tmp_path / "bedroom_train_lmdb", limit=4)["train"].images.shape[0] == 3
    with pytest.raises(ValueError, match="count must be"):
        synthetic.write_celeba_like(tmp_path / "x", 0)


def test_padding_scaling_and_dataset():
    arr = _arr(3)
    t = data.to_tensor(arr.images, 32)
    assert t.shape == (3, 1, 32, 32) and t.dtype == torch.uint8
    assert t[:, :, :2].sum() == 0 and t[:, :, -2:].sum() == 0
    assert torch.equal(data.crop_to(t, 28, 28)[:, 0], torch.from_numpy(arr.images[..., 0]))
    x = data.to_float(t)
    assert x.shape == (3, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(data.to_uint8(data.to_float(t)), t)
    with pytest.raises(DataFormatError, match="larger than"):
        data.to_tensor(_arr(1, h=40, w=40).images, 32)


def test_sampler_state_resumes():
    s = data.BatchSampler(data.to_tensor(_arr(20).images, 32), seed=1)
    s(4)
    state = s.state()
    a = s(5)
    s.set_state(state)
    assert torch.equal(s(5), a)
    assert json.dumps({"ok": True})
