"""Colored (power-law) Gaussian noise: unit variance at every step, the declared spectral slope, the
hand-computed scale of the construction, determinism, jit/vmap, and one-line errors."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from metarl.agents.colored_noise import _stddev, colored_noise, spectral_scale


def _slope(x: np.ndarray) -> float:
    """Least-squares slope of log mean power against log frequency (zero and Nyquist bins left out)."""
    horizon = x.shape[-1]
    power = np.mean(np.abs(np.fft.rfft(x, axis=-1)) ** 2, axis=0)[1:-1]
    return float(np.polyfit(np.log(np.fft.rfftfreq(horizon)[1:-1]), np.log(power), 1)[0])


@pytest.mark.parametrize("horizon", [500, 501])
@pytest.mark.parametrize("exponent", [0.0, 1.0, 2.0])
def test_each_step_is_standard_normal_and_the_spectrum_falls_as_one_over_f_to_the_exponent(exponent, horizon):
    x = np.asarray(colored_noise(jax.random.key(0), exponent, (4000,), horizon), np.float64)
    assert x.shape == (4000, horizon) and x.dtype == np.float64
    per_step = x.var(axis=0)  # 4000 draws per step: sd of a variance estimate ~ 0.022
    assert abs(per_step.mean() - 1.0) < 0.02 and per_step.min() > 0.88 and per_step.max() < 1.12
    assert abs(x.mean()) < 0.05
    assert abs(_slope(x) + exponent) < 0.05
    lag1 = float(np.mean(x[:, 1:] * x[:, :-1]))
    assert {0.0: abs(lag1) < 0.02, 1.0: 0.6 < lag1 < 0.85, 2.0: lag1 > 0.95}[exponent], lag1


def test_the_construction_scale_by_hand():
    """horizon 4, exponent 2: frequencies 0, 1/4, 1/2 -> amplitudes (1/4)^-1 (cutoff), 4, 2; step variance
    (s0^2 + 4 s1^2 + s2^2) / 4^2 = (16 + 64 + 4) / 16 = 5.25."""
    np.testing.assert_allclose(spectral_scale(2.0, 4), [4.0, 4.0, 2.0])
    assert _stddev(spectral_scale(2.0, 4), 4) == pytest.approx(np.sqrt(5.25))
    # odd horizon 3: frequencies 0, 1/3, no Nyquist bin; exponent 0: (1 + 4) / 9
    assert _stddev(spectral_scale(0.0, 3), 3) == pytest.approx(np.sqrt(5.0) / 3.0)


def test_same_key_same_noise_under_jit_and_vmap():
    draw = jax.jit(lambda k: colored_noise(k, 1.0, (2, 3), 64))
    a, b = draw(jax.random.key(1)), draw(jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(draw(jax.random.key(2))))
    keys = jax.random.split(jax.random.key(3), 4)
    batched = jax.vmap(draw)(keys)
    assert batched.shape == (4, 2, 3, 64)
    np.testing.assert_allclose(np.asarray(batched[2]), np.asarray(draw(keys[2])), atol=1e-6)


@pytest.mark.parametrize("exponent, horizon, message", [
    (1.0, 1, "a horizon of at least 2 steps, got 1"),
    (-0.5, 10, "a finite exponent >= 0, got -0.5"),
    (float("nan"), 10, "a finite exponent >= 0, got nan"),
])
def test_bad_arguments_give_one_line(exponent, horizon, message):
    with pytest.raises(ValueError) as info:
        colored_noise(jax.random.key(0), exponent, (1,), horizon)
    assert message in str(info.value) and "\n" not in str(info.value)
