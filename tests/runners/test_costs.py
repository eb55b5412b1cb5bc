"""specdec.runners.costs.PassCosts: the interpolated cost curve, its marginal row, and the (T, T') line the
budget rule reads."""
from __future__ import annotations

import pytest

from specdec.runners.costs import PassCosts


def test_curve_interpolates_and_extrapolates_with_the_last_slope():
    c = PassCosts((1, 4, 8), (0.1, 0.13, 0.21))
    assert c(1) == 0.1 and c(2) == pytest.approx(0.11) and c(6) == pytest.approx(0.17)
    assert c(10) == pytest.approx(0.25)  # the last slope (0.02 a row) beyond the measured rows
    assert c.marginal(2) == pytest.approx(0.01)
    t, slope = c.line(4)
    assert t == pytest.approx(0.13) and slope == pytest.approx(0.02)  # what a 5th row adds
    assert PassCosts((1, 2), (0.2, 0.1)).line(1)[1] == 0.0  # a noisy falling curve: a row never saves time
    curve = c.curve()
    assert curve["rows"] == [1, 4, 8] and curve["ms"] == [100.0, 130.0, 210.0] and curve["vs_one_row"][2] == 2.1


def test_rows_must_be_increasing_and_match():
    with pytest.raises(ValueError):
        PassCosts((4, 1), (0.1, 0.2))
    with pytest.raises(ValueError):
        PassCosts((1, 2), (0.1,))
