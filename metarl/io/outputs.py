"""Run-directory writers shared by the command-line apps.

* ``config.yaml`` — the resolved configuration (:func:`write_config`)
* ``metrics.jsonl`` / ``.csv`` — one row per seed per update (:func:`write_metrics`, or
  appended chunk by chunk: :func:`update_rows`, back as arrays with :func:`metric_arrays`)
* tables and JSON (:func:`write_csv`, :func:`jsonable`); figures (:func:`pyplot`)
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


def update_rows(metrics: Mapping[str, Any], first_update: int) -> list[dict]:
    """``{name: [seeds, n]}`` for updates ``first_update..`` -> rows in update order, seeds within an update."""
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    (n_seeds, n_updates), names = next(iter(arrays.values())).shape[:2], sorted(arrays)
    return [
        {"seed": s, "update": first_update + u, **{k: _jsonable(arrays[k][s, u]) for k in names}}
        for u in range(n_updates)
        for s in range(n_seeds)
    ]


def metric_arrays(rows: list[dict], names: list[str]) -> dict[str, np.ndarray]:
    """Metric rows (any order) -> ``{name: float64 [seeds, updates]}``; a ``null`` value is NaN."""
    seeds = 1 + max(r["seed"] for r in rows)
    updates = 1 + max(r["update"] for r in rows)
    out = {name: np.full((seeds, updates), np.nan) for name in names}
    for row in rows:
        for name in names:
            value = row.get(name)
            out[name][row["seed"], row["update"]] = np.nan if value is None else value
    return out


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


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (runs write files, never open windows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def jsonable(tree: Any) -> Any:
    """Nested dicts/lists/arrays/NumPy scalars as JSON values (non-finite floats become ``null``)."""
    if isinstance(tree, Mapping):
        return {str(k): jsonable(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [jsonable(v) for v in tree]
    if isinstance(tree, np.ndarray):
        return jsonable(tree.tolist())
    return _jsonable(tree)


def write_csv(path: str | Path, rows: list[dict], header: list[str] | None = None) -> Path:
    """Rows of dicts as CSV (columns: ``header`` or the first row's keys)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header or (list(rows[0]) if rows else []))
        writer.writeheader()
        writer.writerows(rows)
    return path


def save_checkpoint(path: str | Path, tree: Any) -> Path:
    """Orbax checkpoint of a pytree of arrays at ``path`` (replaced if it exists: a resumed run rewrites it)."""
    import logging

    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.WARNING)  # orbax logs every step of a save at INFO
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            checkpointer.save(path, tree, force=True)
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
    import warnings

    x = np.asarray(metrics[name], np.float64)
    k = max(1, int(round(x.shape[1] * fraction)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed without a finished episode stays NaN
        per_seed = np.nanmean(x[:, -k:], axis=1)
    return {"mean": float(np.nanmean(per_seed)), "min": float(np.nanmin(per_seed)), "max": float(np.nanmax(per_seed))}
