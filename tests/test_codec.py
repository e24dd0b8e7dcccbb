import numpy as np
import pytest
import torch
from _tiny import fixed_batch, tiny_net

from dplc.codec import Codec, CodecInputError, build_codec


def test_rate_zero_decode_ignores_input_and_varies_with_seed():
    codec = build_codec(tiny_net(code_channels=0), "map").eval()
    a, b = fixed_batch(4, seed=1), fixed_batch(4, seed=2) * 0.3
    sa, sb = codec.encode(a), codec.encode(b)
    assert sa.shape == (4, 0, 4, 4) and np.array_equal(sa, sb)
    assert torch.equal(codec.decode(sa, seed=5), codec.decode(sb, seed=5))
    assert not torch.allclose(codec.decode(sa, seed=5), codec.decode(sa, seed=6))


def test_decode_is_deterministic_per_seed():
    codec = build_codec(tiny_net(code_channels=2), "map").eval()
    sym = codec.encode(fixed_batch(4))
    assert torch.equal(codec.decode(sym, seed=3), codec.decode(sym, seed=3))
    assert not torch.equal(codec.decode(sym, seed=3), codec.decode(sym, seed=4))


def test_deterministic_codec_ignores_seed():
    codec = build_codec(tiny_net(code_channels=2, noise=False), "map").eval()
    sym = codec.encode(fixed_batch(4))
    assert not codec.stochastic
    assert torch.equal(codec.decode(sym, seed=3), codec.decode(sym, seed=4))


def test_bad_inputs_are_rejected_with_clear_messages():
    codec = build_codec(tiny_net(code_channels=2), "map").eval()
    with pytest.raises(CodecInputError, match=r"shape \(N, 1, 32, 32\)"):
        codec.encode(torch.zeros(2, 3, 32, 32))
    with pytest.raises(CodecInputError, match="floating point"):
        codec.encode(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(CodecInputError, match=r"symbols must lie in \[0, 1\]"):
        codec.decode(np.full((1, 2, 4, 4), 2, np.uint8))
    with pytest.raises(CodecInputError, match="shape"):
        codec.decode(np.zeros((1, 3, 4, 4), np.uint8))


def test_save_and_load_round_trip(tmp_path):
    codec = build_codec(tiny_net(code_channels=2), "map", meta={"method": "dplc"}).eval()
    codec.save(tmp_path / "c")
    back = Codec.load(tmp_path / "c")
    assert back.weights_hash() == codec.weights_hash()
    assert back.meta == {"method": "dplc"}
    sym = codec.encode(fixed_batch(3))
    assert np.array_equal(back.encode(fixed_batch(3)), sym)
    assert torch.equal(back.decode(sym, seed=1), codec.decode(sym, seed=1))


def test_load_rejects_tampered_weights(tmp_path):
    codec = build_codec(tiny_net(code_channels=1), "map").eval()
    codec.save(tmp_path)
    raw = bytearray((tmp_path / "weights.safetensors").read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="does not match the hash"):
        Codec.load(tmp_path)


def test_load_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved dplc codec"):
        Codec.load(tmp_path / "nope")
