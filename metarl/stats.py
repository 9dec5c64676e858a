"""Aggregate statistics over seeds: means and IQMs with 95% bootstrap intervals.

The one place the suite computes them (evaluation tables, continual metrics,
curriculum benchmarks, learning-curve bands):

* :func:`iqm` — interquartile mean (25% trimmed mean over every entry), the
  aggregate rliable recommends (Agarwal et al., 2021), computed by rliable.
* :func:`iqm_ci` — IQM of ``scores[runs]`` or ``scores[runs, tasks]`` with a
  stratified percentile bootstrap (runs resampled within each task, as
  rliable's ``StratifiedBootstrap``).
* :func:`bootstrap_ci` — mean over seeds (axis 0) with a percentile bootstrap,
  for one value per seed or one curve per seed; NaNs (no data for a seed) are
  ignored.

Bootstraps draw from ``numpy.random.default_rng(seed)``, so a table is the
same on every run.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

BOOTSTRAP_REPS = 2000
CONFIDENCE = 0.95


def _tails(confidence: float) -> tuple[float, float]:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = (1.0 - confidence) / 2.0
    return alpha, 1.0 - alpha


def iqm(scores: Any) -> float:
    """Interquartile mean of all entries: rliable's ``aggregate_iqm`` (a 25% trimmed mean)."""
    from rliable import metrics as rliable_metrics

    x = np.asarray(scores, np.float64).ravel()
    if x.size == 0:
        raise ValueError("iqm: no values")
    return float(rliable_metrics.aggregate_iqm(x))


def iqm_ci(
    scores: Any, reps: int = BOOTSTRAP_REPS, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float, float]:
    """``(iqm, low, high)`` of ``scores[runs]`` or ``scores[runs, tasks]``, stratified bootstrap over runs."""
    x = np.asarray(scores, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"iqm_ci needs scores[runs] or scores[runs, tasks], got shape {x.shape}")
    low_q, high_q = _tails(confidence)
    runs, tasks = x.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = x[rows, np.arange(tasks)]
    # the same 25% trimmed mean as rliable's aggregate_iqm, batched over the resamples
    estimates = _scipy_stats.trim_mean(resampled.reshape(reps, -1), 0.25, axis=1)
    low, high = np.quantile(estimates, [low_q, high_q])
    return iqm(x), float(low), float(high)


def bootstrap_ci(
    values: Any, reps: int = BOOTSTRAP_REPS, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[Any, Any, Any]:
    """``(mean, low, high)`` over seeds (axis 0), percentile bootstrap of the mean.

    ``values[seeds]`` gives floats; ``values[seeds, points]`` gives one array
    per statistic (a band for a learning curve). NaNs are ignored; a column
    with one seed has a zero-width interval.
    """
    x = np.asarray(values, np.float64)
    one_d = x.ndim == 1
    if one_d:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"bootstrap_ci needs values[seeds] or values[seeds, points], got shape {x.shape}")
    if np.isnan(x).all(axis=0).any() and one_d:
        raise ValueError("bootstrap_ci: no finite values")
    low_q, high_q = _tails(confidence)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(reps, x.shape[0]))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        mean = np.nanmean(x, axis=0)
        boots = np.nanmean(x[idx], axis=1)  # [reps, points]
        low, high = np.nanquantile(boots, [low_q, high_q], axis=0)
    if one_d:
        return float(mean[0]), float(low[0]), float(high[0])
    return mean, low, high
