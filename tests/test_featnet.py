import pytest
import torch

from dplc import featnet


def _two_class_data(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    images = torch.zeros(n, 1, 32, 32, dtype=torch.uint8)
    images[labels == 0, :, 4:16, :] = 200  # top bar vs bottom bar
    images[labels == 1, :, 16:28, :] = 200
    noise = torch.randint(0, 40, images.shape, generator=g, dtype=torch.uint8)
    return images + noise, labels


def test_train_save_load_and_features(tmp_path):
    x, y = _two_class_data()
    net, report = featnet.train_featnet(x, y, epochs=2, batch_size=32, test=_two_class_data(64, seed=1), flip=False)
    assert report.test_accuracy > 0.9
    path = featnet.save_featnet(net, tmp_path / "f.safetensors")
    back = featnet.load_featnet(path)
    with torch.no_grad():
        assert torch.allclose(back.embed(x[:4].float() / 127.5 - 1), net.embed(x[:4].float() / 127.5 - 1))
    assert back.embed(torch.zeros(3, 1, 32, 32)).shape == (3, featnet.FEATURE_DIM)


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the `featnet` stage"):
        featnet.load_featnet(tmp_path / "none.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="not a dplc feature network"):
        featnet.load_featnet(tmp_path / "x.safetensors")


def test_extractor_needs_weights_path():
    featnet.register()
    with pytest.raises(ValueError, match="feature_extractor_weights_path"):
        featnet.FeatNetExtractor(featnet.EXTRACTOR_NAME, [featnet.FEATURE_LAYER])
