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


def test_unlabelled_images_train_the_rotation_task():
    import numpy as np

    from dplc import synthetic

    rng = np.random.default_rng(0)
    imgs = torch.from_numpy(np.stack([synthetic.image(32, 32, rng) for _ in range(704)])).permute(0, 3, 1, 2).contiguous()
    unlabelled = torch.full((704,), -1)
    assert featnet.task_of(unlabelled) == featnet.ROTATION and featnet.task_of(torch.arange(3)) == featnet.CLASSES
    with pytest.raises(ValueError, match="some images have labels"):
        featnet.task_of(torch.tensor([0, -1]))
    net, report = featnet.train_featnet(imgs[:640], unlabelled[:640], epochs=10, batch_size=32,
                                        test=(imgs[640:], unlabelled[640:]), progress_every_s=0)  # fmt: skip
    assert report.task == featnet.ROTATION and net.classes == 4
    assert report.test_accuracy > 0.5  # chance is 0.25
    untrained = featnet.FeatNet(3, 4)
    assert featnet.accuracy(untrained, imgs[640:], unlabelled[640:]) < 0.45


def test_rotate_turns_each_image_by_its_own_quarter_turns():
    x = torch.arange(2 * 1 * 3 * 3).reshape(2, 1, 3, 3)
    out = featnet.rotate(x, torch.tensor([0, 1]))
    assert torch.equal(out[0], x[0]) and torch.equal(out[1], torch.rot90(x[1], 1, dims=(1, 2)))


def test_saved_weights_are_byte_identical_across_processes(tmp_path):
    """The same weights give the same file in another process (safetensors orders its metadata
    by a per-process hash map; save_featnet sorts it), so DVC sees a rerun as unchanged."""
    import subprocess
    import sys

    script = (
        "import sys, torch\n"
        "from dplc import featnet\n"
        "torch.manual_seed(0)\n"
        "featnet.save_featnet(featnet.FeatNet(1, 10), sys.argv[1])\n"
    )
    outs = []
    for i in range(3):
        out = tmp_path / f"{i}.safetensors"
        subprocess.run([sys.executable, "-c", script, str(out)], check=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    net = featnet.load_featnet(tmp_path / "0.safetensors")
    assert net.channels == 1 and net.classes == 10
