"""metarl.stats against hand-computed values."""

import numpy as np
import pytest

from metarl import stats


def test_iqm_is_the_mean_of_the_middle_half():
    # sorted: -50 1 2 3 4 5 6 100; trim 2 from each end -> mean of 2, 3, 4, 5
    assert stats.iqm([100, 1, 2, 3, 4, 5, 6, -50]) == pytest.approx(3.5)
    assert stats.iqm([[1, 2], [3, 4]]) == pytest.approx(2.5)


def test_constant_scores_have_zero_width_intervals():
    point, low, high = stats.iqm_ci(np.full((6, 3), 2.0))
    assert (point, low, high) == (2.0, 2.0, 2.0)
    mean, low, high = stats.bootstrap_ci([3.0, 3.0, 3.0])
    assert (mean, low, high) == (3.0, 3.0, 3.0)


def test_intervals_bracket_the_estimate_and_are_deterministic():
    x = np.random.default_rng(1).normal(size=(10, 2))
    a = stats.iqm_ci(x, seed=3)
    assert a == stats.iqm_ci(x, seed=3)
    assert a[1] <= a[0] <= a[2]
    m, lo, hi = stats.bootstrap_ci(x[:, 0])
    assert lo <= m <= hi and m == pytest.approx(x[:, 0].mean())


def test_stratified_bootstrap_resamples_within_each_task():
    # task 0 always 0, task 1 always 10: every resample keeps half 0s, half 10s
    x = np.stack([np.zeros(4), np.full(4, 10.0)], axis=1)
    point, low, high = stats.iqm_ci(x)
    assert point == low == high == pytest.approx(5.0)


def test_curve_band_ignores_missing_seeds():
    curves = np.array([[1.0, np.nan], [3.0, 2.0]])
    mean, low, high = stats.bootstrap_ci(curves)
    np.testing.assert_allclose(mean, [2.0, 2.0])
    assert low[1] == high[1] == 2.0


def test_bad_input_is_rejected():
    with pytest.raises(ValueError):
        stats.bootstrap_ci([np.nan, np.nan])
    with pytest.raises(ValueError):
        stats.iqm_ci(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        stats.bootstrap_ci([1.0, 2.0], confidence=1.5)
