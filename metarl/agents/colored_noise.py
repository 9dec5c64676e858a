"""Gaussian noise with a power-law spectrum, for temporally correlated exploration.

``colored_noise(key, exponent, shape, horizon)`` draws sequences of ``horizon``
steps whose power spectrum falls as ``1 / f**exponent``: 0 is white (i.i.d.),
1 pink, 2 red (Brownian-like). Each entry is a standard normal marginally (unit
variance at every step), so a sequence can stand in for the i.i.d. ``N(0, 1)``
noise of a reparametrised Gaussian policy while it acts: Eberhard et al. (2023),
"Pink Noise Is All You Need: Colored Noise Exploration in Deep Reinforcement
Learning", draw one sequence per action entry and episode, of the episode's
length, with pink (``exponent = 1``) as the default. Construction: Timmer and
König (1995) — independent Gaussian Fourier coefficients scaled by
``f**(-exponent / 2)`` (frequencies below ``1 / horizon`` held at that cutoff),
one inverse real FFT, then division by the exact standard deviation that
construction gives. Pure JAX, so it runs inside a jitted, vmapped rollout
(the ``colorednoise`` / ``pink-noise-rl`` packages are NumPy and cannot).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def spectral_scale(exponent: float, horizon: int) -> np.ndarray:
    """Amplitude ``f**(-exponent/2)`` of each of the ``horizon // 2 + 1`` real-FFT frequencies (cutoff 1/horizon)."""
    freqs = np.fft.rfftfreq(horizon)
    return np.maximum(freqs, 1.0 / horizon) ** (-exponent / 2.0)


def _stddev(scale: np.ndarray, horizon: int) -> float:
    """Standard deviation of every step of ``irfft(scale * (a + i b))`` with a, b ~ N(0, 1).

    The zero-frequency coefficient (and for even horizons the Nyquist one) is kept real; the others enter
    the inverse transform twice, as a complex pair, hence the factor 4 on their variance.
    """
    paired = scale[1:-1] if horizon % 2 == 0 else scale[1:]
    variance = scale[0] ** 2 + 4.0 * np.sum(paired ** 2) + (scale[-1] ** 2 if horizon % 2 == 0 else 0.0)
    return float(np.sqrt(variance) / horizon)


def colored_noise(key: jax.Array, exponent: float, shape: tuple[int, ...], horizon: int) -> jax.Array:
    """``[*shape, horizon]`` float32 sequences, each step N(0, 1), power spectrum ``∝ 1 / f**exponent``."""
    if horizon < 2:
        raise ValueError(f"colored noise needs a horizon of at least 2 steps, got {horizon}")
    if not (np.isfinite(exponent) and exponent >= 0):
        raise ValueError(f"colored noise needs a finite exponent >= 0, got {exponent}")
    scale = spectral_scale(exponent, horizon)
    k_re, k_im = jax.random.split(key)
    n_freq = scale.shape[0]
    real = jax.random.normal(k_re, (*shape, n_freq), jnp.float32)
    imag = jax.random.normal(k_im, (*shape, n_freq), jnp.float32)
    real_only = np.zeros(n_freq, bool)
    real_only[0] = True
    if horizon % 2 == 0:
        real_only[-1] = True
    imag = jnp.where(jnp.asarray(real_only), 0.0, imag)
    spectrum = jnp.asarray(scale, jnp.float32) * (real + 1j * imag)
    series = jnp.fft.irfft(spectrum, n=horizon, axis=-1)
    return (series / _stddev(scale, horizon)).astype(jnp.float32)
