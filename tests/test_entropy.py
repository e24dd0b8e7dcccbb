"""The per-channel categorical model and its ANS / fixed-length coders (dplc.entropy)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from dplc.entropy import (
    EntropyModel,
    EntropyModelError,
    PayloadDecodeError,
    SymbolOutOfRangeError,
    ans_decode,
    ans_encode,
    group_size,
    load_entropy_model,
    pack_fixed,
    packed_bits,
    unpack_fixed,
)


def skewed_symbols(n: int, channels: int, levels: int, seed: int) -> np.ndarray:
    """Symbols with a different, skewed distribution per channel (like a trained encoder's).

    The distributions depend on (channels, levels) only, the draws on ``seed``.
    """
    logits = np.random.default_rng(channels * 1000 + levels).normal(0.0, 1.5, (channels, levels))
    rng = np.random.default_rng(seed)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    out = np.empty((n, channels, 4, 4), dtype=np.uint8)
    for c in range(channels):
        out[:, c] = rng.choice(levels, size=(n, 4, 4), p=p[c])
    return out


@pytest.mark.parametrize("levels", [2, 4])
@pytest.mark.parametrize("channels", [0, 1, 4, 16, 64])
def test_round_trip_exact_every_rate(channels: int, levels: int) -> None:
    train = skewed_symbols(200, channels, levels, seed=1)
    batch = skewed_symbols(57, channels, levels, seed=2)
    model = EntropyModel.fit(train, levels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # constriction must not warn (perfect=False is explicit)
        data = ans_encode(batch, model)
        back = ans_decode(data, model, count=57)
    assert back.dtype == np.uint8 and back.shape == batch.shape
    assert np.array_equal(back, batch)
    packed = pack_fixed(batch, levels)
    assert len(packed) == math.ceil(packed_bits(57, channels, levels) / 8)
    assert np.array_equal(unpack_fixed(packed, 57, channels, levels), batch)
    if channels == 0:
        assert data == b"" and packed == b""


def test_fixed_length_is_exactly_the_papers_rate() -> None:
    # C * 16 * log2(L) bits per image: 4 images at C = 4, L = 2 -> 4 * 64 bits = 32 bytes
    sym = skewed_symbols(4, 4, 2, seed=0)
    assert len(pack_fixed(sym, 2)) * 8 == 4 * 4 * 16 * 1
    sym4 = skewed_symbols(3, 1, 4, seed=0)
    assert len(pack_fixed(sym4, 4)) * 8 == 3 * 1 * 16 * 2


def test_ans_overhead_below_one_percent_on_a_realistic_batch() -> None:
    train = skewed_symbols(2000, 16, 2, seed=3)
    batch = skewed_symbols(256, 16, 2, seed=4)
    model = EntropyModel.fit(train, 2)
    ideal = model.information_bits(batch)
    real = len(ans_encode(batch, model)) * 8
    assert ideal < packed_bits(256, 16, 2)  # the model helps at all
    assert real <= 1.01 * ideal, (real, ideal)


def test_unseen_symbols_keep_nonzero_probability() -> None:
    train = np.zeros((10, 2, 4, 4), dtype=np.uint8)  # level 1 and 2 never seen
    model = EntropyModel.fit(train, levels=3, smoothing=0.5)
    p = model.probabilities()
    assert (p > 0).all() and np.allclose(p.sum(1), 1.0)
    assert p[0, 1] == pytest.approx(0.5 / (160 + 1.5))
    batch = np.full((3, 2, 4, 4), 2, dtype=np.uint8)
    assert np.array_equal(ans_decode(ans_encode(batch, model), model, 3), batch)


def test_information_bits_is_the_sum_of_minus_log2_p() -> None:
    model = EntropyModel(levels=2, counts=((3, 1), (0, 0)), smoothing=1.0)
    batch = np.zeros((1, 2, 4, 4), dtype=np.uint8)
    batch[0, 0, 0, 0] = 1
    expected = 15 * -math.log2(4 / 6) + -math.log2(2 / 6) + 16 * 1.0
    assert model.information_bits(batch) == pytest.approx(expected)


def test_stream_is_channel_major_in_groups_of_k() -> None:
    """The documented layout: channel 0 first; k = 4 binary symbols per ANS symbol."""
    import constriction

    assert [group_size(L) for L in (2, 3, 4, 5, 16, 256)] == [4, 2, 2, 1, 1, 1]
    model = EntropyModel.fit(skewed_symbols(100, 3, 2, seed=5), 2)
    batch = skewed_symbols(6, 3, 2, seed=6)
    data = ans_encode(batch, model) + b"\x00" * 3
    words = np.frombuffer(data[: len(data) // 4 * 4], dtype="<u4").astype(np.uint32)
    coder = constriction.stream.stack.AnsCoder(words)
    for c, p in enumerate(model.probabilities()):
        q = np.multiply.outer(np.multiply.outer(np.multiply.outer(p, p), p), p).reshape(-1)
        categorical = constriction.stream.model.Categorical(q.astype(np.float32), perfect=False)
        groups = batch[:, c].reshape(-1, 4).astype(int) @ np.array([8, 4, 2, 1])
        assert np.array_equal(coder.decode(categorical, 6 * 4), groups)
    assert coder.is_empty()


@pytest.mark.parametrize("levels", [3, 5, 256])
def test_round_trip_with_other_levels(levels: int) -> None:
    model = EntropyModel.fit(skewed_symbols(50, 2, levels, seed=1), levels)
    batch = skewed_symbols(9, 2, levels, seed=2)
    assert np.array_equal(ans_decode(ans_encode(batch, model), model, 9), batch)


def test_json_round_trip_and_model_id(tmp_path) -> None:
    model = EntropyModel.fit(skewed_symbols(50, 3, 4, seed=7), 4, smoothing=0.25)
    path = model.save(tmp_path)
    assert path.name == "entropy.json"
    back = load_entropy_model(tmp_path)
    assert back == model and back.model_id == model.model_id
    assert len(model.model_id) == 16 and int(model.model_id, 16) >= 0
    assert np.array_equal(back.probabilities(), model.probabilities())
    other = EntropyModel.fit(skewed_symbols(50, 3, 4, seed=8), 4, smoothing=0.25)
    assert other.model_id != model.model_id


@pytest.mark.parametrize(
    "data",
    [
        {"format": "nope"},
        {"format": "dplc-entropy", "version": 99, "levels": 2, "smoothing": 1, "counts": []},
        {"format": "dplc-entropy", "version": 1, "levels": 2, "smoothing": 1, "counts": [[1]]},
        {"format": "dplc-entropy", "version": 1, "levels": 2, "smoothing": 0, "counts": [[1, 1]]},
        {"format": "dplc-entropy", "version": 1, "levels": 2, "smoothing": 1, "counts": [[-1, 1]]},
        {"format": "dplc-entropy", "version": 1, "levels": 2, "smoothing": 1},
    ],
)
def test_malformed_models_are_refused(data: dict) -> None:
    with pytest.raises(EntropyModelError):
        EntropyModel.from_dict(data)


def test_corrupt_payloads_raise_payload_errors() -> None:
    model = EntropyModel.fit(skewed_symbols(100, 2, 2, seed=9), 2)
    batch = skewed_symbols(8, 2, 2, seed=10)
    data = ans_encode(batch, model)
    with pytest.raises(PayloadDecodeError):
        ans_decode(b"", model, 8)
    with pytest.raises(PayloadDecodeError):
        ans_decode(data + b"\x00", model, 8)
    with pytest.raises(PayloadDecodeError):
        ans_decode(data + b"\x07\x01\x02\x03", model, 8)  # words left after the last symbol
    with pytest.raises(PayloadDecodeError):
        ans_decode(b"\x01", EntropyModel.uniform(0, 2), 3)  # C = 0 carries no bytes
    packed = pack_fixed(skewed_symbols(1, 1, 3, seed=0), 3)
    with pytest.raises(PayloadDecodeError):
        unpack_fixed(packed[:-1], 1, 1, 3)
    with pytest.raises(SymbolOutOfRangeError):
        unpack_fixed(b"\xff" * 4, 1, 1, 3)  # 2-bit symbol 3 with L = 3
    with pytest.raises(PayloadDecodeError):
        unpack_fixed(b"\x00", 1, 0, 2)  # C = 0 carries no bytes


def test_symbols_are_checked_against_the_model() -> None:
    model = EntropyModel.uniform(2, 2)
    with pytest.raises(EntropyModelError, match="code channels"):
        ans_encode(np.zeros((1, 3, 4, 4), np.uint8), model)
    with pytest.raises(EntropyModelError, match=r"\[0, 1\]"):
        ans_encode(np.full((1, 2, 4, 4), 2, np.uint8), model)
    with pytest.raises(EntropyModelError, match="shape"):
        model.information_bits(np.zeros((2, 4, 4), np.uint8))
