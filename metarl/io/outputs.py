"""Run-directory writers shared by the command-line apps.

* ``config.yaml`` — the resolved configuration (:func:`write_config`)
* ``metrics.jsonl`` / ``.csv`` — one row per seed per update (:func:`write_metrics`)
* ``learning_curve.png`` — mean over seeds with a 95% bootstrap interval
  (:func:`bootstrap_ci`, :func:`plot_learning_curve`)
* ``checkpoint/`` — an orbax checkpoint of a pytree (:func:`save_checkpoint`)
* a terminal progress bar fed from inside ``jit`` (:class:`ProgressBar`)
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def write_config(run_dir: str | Path, cfg: Any, name: str = "config.yaml") -> Path:
    """Write ``cfg`` (DictConfig or mapping) with every interpolation resolved."""
    from omegaconf import OmegaConf

    path = Path(run_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    container = OmegaConf.create(cfg if not OmegaConf.is_config(cfg) else OmegaConf.to_container(cfg, resolve=True))
    path.write_text(OmegaConf.to_yaml(container, resolve=True))
    return path


def _jsonable(x: Any) -> Any:
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN
    return x


def metric_rows(metrics: Mapping[str, Any]) -> list[dict]:
    """``{name: [seeds, updates]}`` -> rows ``{"seed", "update", name: value, ...}``."""
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    shapes = {a.shape[:2] for a in arrays.values()}
    if len(shapes) != 1:
        raise ValueError(f"metrics must share their [seeds, updates] shape, got {sorted(shapes)}")
    (n_seeds, n_updates), = shapes
    names = sorted(arrays)
    return [
        {"seed": s, "update": u, **{k: _jsonable(arrays[k][s, u]) for k in names}}
        for s in range(n_seeds)
        for u in range(n_updates)
    ]


def write_metrics(run_dir: str | Path, metrics: Mapping[str, Any], stem: str = "metrics", csv_too: bool = False) -> Path:
    """Per-seed metrics as JSON lines (and optionally CSV); returns the JSONL path."""
    rows = metric_rows(metrics)
    path = Path(run_dir) / f"{stem}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    if csv_too and rows:
        with (Path(run_dir) / f"{stem}.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def bootstrap_ci(
    values: Any, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 (seeds) and a percentile-bootstrap interval, per column.

    NaNs (no data yet for a seed) are ignored; a column with one seed has a
    zero-width interval.
    """
    x = np.asarray(values, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.shape[0], size=(n_boot, x.shape[0]))
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        mean = np.nanmean(x, axis=0)
        boots = np.nanmean(x[idx], axis=1)  # [n_boot, columns]
        alpha = (1.0 - confidence) / 2.0
        low, high = np.nanquantile(boots, [alpha, 1.0 - alpha], axis=0)
    return mean, low, high


class _quiet_nan_warnings:
    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def plot_learning_curve(
    path: str | Path,
    x: Any,
    curves: Mapping[str, Any],
    xlabel: str = "environment steps",
    ylabel: str = "episode return",
    title: str | None = None,
) -> Path:
    """One line per label: mean over seeds with a shaded 95% bootstrap interval.

    ``curves`` maps a label to an array ``[seeds, len(x)]``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, values in curves.items():
        mean, low, high = bootstrap_ci(values)
        ax.plot(x, mean, label=f"{label} (n={np.asarray(values).shape[0]})")
        ax.fill_between(x, low, high, alpha=0.25)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_checkpoint(path: str | Path, tree: Any) -> Path:
    """Orbax checkpoint of a pytree of arrays at ``path`` (a new directory)."""
    import logging

    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.WARNING)  # orbax logs every step of a save at INFO
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(path, tree)
    finally:
        absl_logger.setLevel(level)
    return path


def load_checkpoint(path: str | Path, like: Any = None) -> Any:
    """Read back :func:`save_checkpoint` (``like``: a pytree with the target structure)."""
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(Path(path).absolute(), like) if like is not None else checkpointer.restore(
            Path(path).absolute()
        )


class ProgressBar:
    """A tqdm bar advanced by ``jax.debug.callback`` from inside a jitted run.

    ``callback(done)`` takes the number of updates done; under ``vmap`` it may
    fire once per batch element, so the bar only ever moves forward. The bar
    appears only once a run has lasted ``delay`` seconds.
    """

    def __init__(self, total: int, description: str = "training", unit: str = "update", delay: float = 2.0):
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=description, unit=unit, delay=delay, dynamic_ncols=True)

    def callback(self, done: Any) -> None:
        done = int(np.max(np.asarray(done)))
        if done > self._bar.n:
            self._bar.update(done - self._bar.n)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def summarize_final(metrics: Mapping[str, Any], name: str = "episode_return", fraction: float = 0.1) -> dict:
    """Mean/min/max over seeds of ``name`` averaged over the last ``fraction`` of updates."""
    x = np.asarray(metrics[name], np.float64)
    k = max(1, int(round(x.shape[1] * fraction)))
    with _quiet_nan_warnings():
        per_seed = np.nanmean(x[:, -k:], axis=1)
    return {"mean": float(np.nanmean(per_seed)), "min": float(np.nanmin(per_seed)), "max": float(np.nanmax(per_seed))}
