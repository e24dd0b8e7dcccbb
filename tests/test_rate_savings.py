"""dplc.rate_savings: rate at equal quality from piecewise-linear log-rate interpolation."""

from __future__ import annotations

import pytest

from dplc.rate_savings import efficient_points, rate_change_percent


def test_a_constant_factor_is_recovered_and_the_sign_flips():
    b = {"bpp": [0.1, 0.2, 0.4, 0.8], "mse": [0.5, 0.3, 0.2, 0.15]}
    a = {"bpp": [r * 0.75 for r in b["bpp"]], "mse": b["mse"]}
    assert rate_change_percent(a, b, "mse") == pytest.approx(-25.0, abs=1e-6)
    assert rate_change_percent(b, a, "mse") == pytest.approx(100 / 0.75 - 100, abs=0.01)
    assert rate_change_percent(b, b, "mse") == 0.0


def test_points_that_get_worse_with_rate_are_not_a_trade_off():
    rates, values = efficient_points([0.0, 0.1, 0.2, 0.4, 0.8], [0.7, 0.3, 0.2, 0.25, 0.1])
    assert rates.tolist() == [0.1, 0.2, 0.8] and values.tolist() == [0.3, 0.2, 0.1]


def test_no_overlap_or_too_few_points_is_none():
    a = {"bpp": [0.1, 0.2], "mse": [0.4, 0.3]}
    assert rate_change_percent(a, {"bpp": [1.0, 2.0], "mse": [0.2, 0.1]}, "mse") is None
    assert rate_change_percent(a, {"bpp": [1.0], "mse": [0.35]}, "mse") is None
