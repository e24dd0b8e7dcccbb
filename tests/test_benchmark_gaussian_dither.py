"""benchmarks/gaussian_dither.py: the scalar bounds it compares the dithered code with."""

from __future__ import annotations

import math

import pytest
from _benchmarks import benchmark_module

from dplc.gaussian_bounds import lloyd_distortion

dither = benchmark_module("gaussian_dither")


def test_lloyd_max_reproduces_max_1960():
    """Max (1960), Table I: the least MSE of a 2-, 4- and 8-level quantizer of N(0, 1)."""
    assert dither.lloyd_max(1) == 1.0
    assert dither.lloyd_max(2) == pytest.approx(1 - 2 / math.pi, rel=1e-9)
    assert dither.lloyd_max(4) == pytest.approx(0.1175, abs=1e-4)
    assert dither.lloyd_max(8) == pytest.approx(0.03454, abs=1e-5)
    # k-means on samples finds the same optimum from above
    assert lloyd_distortion((1.0,), 2.0) == pytest.approx(dither.lloyd_max(4), rel=0.02)


def test_product_private_spends_the_message_like_a_split_by_hand():
    # one component: all 4 symbols on it, 2·D_4
    mse, levels = dither.product_private((1.0,), 2.0)
    assert levels == (4,) and mse == pytest.approx(2 * dither.lloyd_max(4))
    # 1 bit on two components: the larger variance gets both symbols, the other costs 2σ²
    mse, levels = dither.product_private((4.0, 1.0), 1.0)
    assert levels == (2, 1) and mse == pytest.approx((4 * 2 * (1 - 2 / math.pi) + 2 * 1.0) / 2)
