"""Inception weights: a missing file is one clear message, a foreign pickle is never run, and a
stand-in state dict of the same network computes Inception FIDs (no download anywhere)."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from dplc import inception, metrics


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    """torch-fidelity's Inception-v3 with random weights, saved as its published file is."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe

    load, load_state = torch.load, fe.FeatureExtractorInceptionV3.load_state_dict
    torch.load = lambda *a, **k: {}  # build the network, load nothing: its random initial weights
    fe.FeatureExtractorInceptionV3.load_state_dict = lambda self, state: None
    try:
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path="unused")
    finally:
        torch.load, fe.FeatureExtractorInceptionV3.load_state_dict = load, load_state
    for m in net.modules():  # variance-preserving weights, so the random features do not vanish
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
    path = tmp_path_factory.mktemp("weights") / "inception-stand-in.pth"
    torch.save(net.state_dict(), path)
    return path


def test_missing_weights_name_the_file_and_where_it_goes(tmp_path):
    where = tmp_path / "data" / "weights" / inception.PUBLISHED_NAME
    with pytest.raises(inception.InceptionWeightsError) as e:
        inception.check_weights(where)
    msg = str(e.value)
    assert str(where) in msg and inception.PUBLISHED_URL in msg and "featnet.inception_weights: null" in msg
    assert "\n" not in msg


def test_a_foreign_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "inception.pth"
    bad.write_bytes(pickle.dumps({"fc.weight": Payload()}))
    with pytest.raises(inception.InceptionWeightsError, match="not a plain PyTorch state dict"):
        inception.check_weights(bad)
    assert not marker.exists()


def test_a_file_whose_hash_contradicts_its_name_is_refused(tmp_path, stand_in):
    wrong = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    wrong.write_bytes(stand_in.read_bytes())
    with pytest.raises(inception.InceptionWeightsError, match="its name says SHA-256 6726825d"):
        inception.check_weights(wrong)


def test_other_tensors_are_not_inception(tmp_path):
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(2)}, other)
    with pytest.raises(inception.InceptionWeightsError, match="layer names"):
        inception.check_weights(other)


def test_stand_in_weights_give_inception_fids(stand_in):
    assert inception.check_weights(stand_in) == stand_in and not inception.is_published(stand_in)
    g = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (24, 3, 64, 64), dtype=torch.uint8, generator=g)
    shifted = (real.int() // 2).to(torch.uint8)
    same = metrics.fid_kid(real, real, inception_path=stand_in, kid_subset_size=12)
    other = metrics.fid_kid(real, shifted, inception_path=stand_in, kid_subset_size=12)
    assert math.isfinite(other["fid_inception"]) and other["fid_inception"] > 10 * max(same["fid_inception"], 1e-6)
    assert "fid_featnet" not in other


def test_the_featnet_stage_refuses_missing_weights_before_any_work(tmp_path, monkeypatch):
    import yaml

    from pipelines import featnet as stage
    from pipelines import params as P

    params = P.load()
    params["featnet"]["inception_weights"] = str(tmp_path / inception.PUBLISHED_NAME)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("DPLC_PARAMS", str(path))
    monkeypatch.setattr(stage.data, "read_split", lambda *a, **k: pytest.fail("read data before checking"))
    with pytest.raises(SystemExit) as e:
        stage.main()
    assert str(e.value).startswith("featnet: Inception weights not found at ") and inception.PUBLISHED_NAME in str(e.value)
