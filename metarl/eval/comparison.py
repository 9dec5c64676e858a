"""rliable's comparisons of one method against baselines: probability of improvement and performance profiles.

Scores are ``[runs, tasks]`` per method (a task is one env or one held-out task). Both statistics come from
rliable (Agarwal et al., 2021) with its stratified bootstrap (runs resampled within each task), drawn from a
seeded ``RandomState`` so a report is the same on every run:

* :func:`improvement_rows` — P(X > Y): for each task the Mann–Whitney probability that a run of X scores above
  a run of Y, averaged over tasks, with its 95% interval.
* :func:`performance_profiles` — the fraction of runs (over every task) whose normalised score exceeds τ, with
  95% bands; :func:`plot_performance_profiles` draws them.

Profiles need the tasks on one scale (the job's is :func:`metarl.eval.report.min_max_normalised`); the probability
of improvement does not, since it compares runs within each task.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from metarl.io.outputs import pyplot

REPS = 2000
CONFIDENCE = 0.95


def _random_state(seed: int) -> np.random.RandomState:
    return np.random.RandomState(seed)  # rliable's bootstrap takes a legacy RandomState


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """rliable's two-sample bootstrap draws from numpy's global RNG whatever ``random_state`` says, so seed that
    too (and put it back); ``arch`` warns that ``random_state`` is deprecated, which is not the user's concern."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
            yield
    finally:
        np.random.set_state(saved)


def _scores(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"{name}: scores must be [runs, tasks], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: scores contain NaN or inf (a run that never finished an episode)")
    return x


def improvement_rows(
    scores: Mapping[str, Any], method: str, baselines: list[str], reps: int = REPS, seed: int = 0
) -> list[dict]:
    """P(``method`` > baseline) with its 95% stratified-bootstrap interval, one row per baseline."""
    from rliable import library as rly
    from rliable import metrics

    x = _scores(scores[method], method)
    pairs = {}
    for baseline in baselines:
        y = _scores(scores[baseline], baseline)
        if y.shape[1] != x.shape[1]:
            raise ValueError(f"{method} has {x.shape[1]} tasks, {baseline} has {y.shape[1]}")
        pairs[baseline] = [x, y]
    with _seeded(seed):
        point, interval = rly.get_interval_estimates(
            pairs, metrics.probability_of_improvement, reps=reps, confidence_interval_size=CONFIDENCE,
            random_state=_random_state(seed),
        )
    bounds = {b: np.ravel(interval[b]) for b in baselines}
    return [{"method": method, "baseline": b, "p_improvement": float(np.ravel(point[b])[0]),
             "ci_low": float(bounds[b][0]), "ci_high": float(bounds[b][1]),
             "runs": int(x.shape[0]), "tasks": int(x.shape[1])} for b in baselines]


def verdict(row: dict) -> str:
    """"wins" / "loses" when the interval of P(X > Y) excludes 0.5, else "ties"."""
    if row["ci_low"] > 0.5:
        return "wins"
    if row["ci_high"] < 0.5:
        return "loses"
    return "ties"


def performance_profiles(
    scores: Mapping[str, Any], taus: Any, reps: int = REPS, seed: int = 0
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(profile, band)`` per method: the fraction of runs x tasks scoring above each τ, and its 95% band."""
    from rliable import library as rly

    taus = np.asarray(taus, np.float64)
    checked = {name: _scores(x, name) for name, x in scores.items()}
    with _seeded(seed):
        return rly.get_interval_estimates(
            checked, lambda s: rly.score_distributions(s, taus), reps=reps,
            confidence_interval_size=CONFIDENCE, random_state=_random_state(seed),
        )


def plot_performance_profiles(
    profiles: Mapping[str, np.ndarray], bands: Mapping[str, np.ndarray], taus: Any, path: str | os.PathLike,
    xlabel: str = "normalised score τ",
) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, profile in profiles.items():
        ax.plot(taus, profile, label=name)
        ax.fill_between(taus, bands[name][0], bands[name][1], alpha=0.2)
    ax.set(xlabel=xlabel, ylabel="fraction of runs with score > τ", ylim=(0, 1.02))
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
