"""Tables, plots and files of evaluations: shared helpers (Markdown tables, intervals, learning
curves) and the report of objectives x optimizers.

:func:`write_results` writes to a run directory: ``per_seed_returns.csv``
(final and training-mean return of every seed), ``aggregate.md`` /
``aggregate.json`` (IQM with 95% stratified-bootstrap intervals,
:func:`metarl.stats.iqm_ci`), ``learning_curves.png``, ``drift_heatmap.png``
and, with a learned optimizer, ``update_magnitude.csv`` / ``.png``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from metarl.eval.objectives import EvalResults, ObjectiveSpec, RunSpec, as_run, plot_drift_heatmaps
from metarl.eval.optimizers import magnitude_rows, plot_update_magnitudes
from metarl.io.outputs import pyplot, write_csv
from metarl.stats import bootstrap_ci, iqm_ci

NAN3 = (math.nan, math.nan, math.nan)

Column = tuple[str, bool, Callable[[dict], str]]  # (title, right-aligned, cell text of a row)


def markdown_table(rows: Sequence[dict], columns: Sequence[Column]) -> str:
    """A Markdown table: one line per row, cells from each column's formatter."""
    lines = [
        "| " + " | ".join(title for title, _, _ in columns) + " |",
        "|" + "|".join("---:" if right else "---" for _, right, _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(r) for _, _, cell in columns) + " |" for r in rows]
    return "\n".join(lines)


def ci_text(low_key: str, high_key: str, digits: int) -> Callable[[dict], str]:
    return lambda r: f"[{r[low_key]:.{digits}f}, {r[high_key]:.{digits}f}]"


def text(key: str, digits: int | None = None) -> Callable[[dict], str]:
    return lambda r: f"{r[key]:.{digits}f}" if digits is not None else str(r[key])


def iqm_interval(scores: Any, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """IQM of ``scores[runs, tasks]`` with its 95% interval; NaN when a run has no score (never finished an episode)."""
    scores = np.asarray(scores, np.float64)
    return iqm_ci(scores, reps=reps, seed=seed) if np.isfinite(scores).all() else NAN3


def mean_interval(scores: Any, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean over runs with its 95% bootstrap interval (NaN scores ignored; all NaN: NaN)."""
    scores = np.asarray(scores, np.float64).ravel()
    return bootstrap_ci(scores, reps=reps, seed=seed) if np.isfinite(scores).any() else NAN3


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
    plt = pyplot()
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


# --- objectives x optimizers ---------------------------------------------------------------------
TABLE_COLUMNS: list[Column] = [
    ("env", False, text("env")),
    ("method", False, text("objective")),
    ("IQM final return", True, text("iqm", 1)),
    ("95% CI", False, ci_text("ci_low", "ci_high", 1)),
    ("mean", True, text("mean", 1)),
    ("seeds", True, text("seeds")),
]


def aggregate_rows(results: EvalResults, reps: int = 2000, seed: int = 0) -> list[dict]:
    """IQM and 95% stratified-bootstrap CI of the final return, per env and objective."""
    rows = []
    for env_index, env_name in enumerate(results.env_names):
        for label, final in results.final.items():
            score = final[:, env_index : env_index + 1]
            iqm, low, high = iqm_interval(score, reps, seed)
            rows.append({"env": env_name, "objective": label, "seeds": int(score.shape[0]),
                         "mean": float(np.nanmean(score)), "iqm": iqm, "ci_low": low, "ci_high": high})
    return rows


def plot_learning_curves(results: EvalResults, path: str | os.PathLike) -> Path:
    """Mean episode return (+- standard error over seeds) against environment steps."""
    plt = pyplot()
    n = len(results.env_names)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4), squeeze=False)
    for ax, env_name in zip(axes[0], results.env_names):
        for label, per_env in results.returns.items():
            curves = per_env[env_name]
            with warnings.catch_warnings():  # updates before any episode ended are NaN for every seed: left blank
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(curves, axis=0)
                stderr = np.nanstd(curves, axis=0) / math.sqrt(curves.shape[0])
            ax.plot(results.timesteps, mean, label=label)
            ax.fill_between(results.timesteps, mean - stderr, mean + stderr, alpha=0.2)
        ax.set(title=env_name, xlabel="environment steps", ylabel="episode return")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _per_seed_rows(results: EvalResults) -> list[dict]:
    rows = []
    for label, per_env in results.returns.items():
        for env_index, env_name in enumerate(results.env_names):
            means = np.nanmean(per_env[env_name], axis=1)
            for s, (final, mean) in enumerate(zip(results.final[label][:, env_index], means)):
                rows.append({"objective": label, "env": env_name, "seed": s,
                             "final_return": f"{final:.4f}", "mean_return": f"{mean:.4f}"})
    return rows


def write_results(
    results: EvalResults, specs: Sequence[ObjectiveSpec | RunSpec], out_dir: str | os.PathLike, seed: int = 0
) -> dict[str, Path]:
    """All evaluation files; returns their paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_seed": write_csv(out_dir / "per_seed_returns.csv", _per_seed_rows(results),
                              ["objective", "env", "seed", "final_return", "mean_return"]),
        "table": out_dir / "aggregate.md",
        "table_json": out_dir / "aggregate.json",
    }
    rows = aggregate_rows(results, seed=seed)
    paths["table"].write_text(markdown_table(rows, TABLE_COLUMNS) + "\n")
    paths["table_json"].write_text(json.dumps(rows, indent=1))
    paths["curves"] = plot_learning_curves(results, out_dir / "learning_curves.png")
    objectives = list({s.objective.label: s.objective for s in map(as_run, specs)}.values())
    paths["heatmap"] = plot_drift_heatmaps(objectives, out_dir / "drift_heatmap.png")
    if results.learned_optimizer_labels:
        paths["magnitude_table"] = write_csv(out_dir / "update_magnitude.csv", magnitude_rows(results, seed=seed))
        paths["magnitude"] = plot_update_magnitudes(results, out_dir / "update_magnitude.png")
    return paths


# --- one method against baselines (rliable) -------------------------------------------------------
COMPARISON_COLUMNS: list[Column] = [
    ("comparison", False, lambda r: f"{r['method']} vs {r['baseline']}"),
    ("envs", False, text("envs")),
    ("P(improvement)", True, text("p_improvement", 2)),
    ("95% CI", False, ci_text("ci_low", "ci_high", 2)),
    ("verdict", False, text("verdict")),
    ("runs x envs", True, lambda r: f"{r['runs']} x {r['tasks']}"),
]
PROFILE_TAUS = np.linspace(0.0, 1.0, 51)


def min_max_normalised(results: EvalResults) -> dict[str, np.ndarray]:
    """Final returns ``[seeds, envs]`` per method on one scale: per env, 0 = the worst and 1 = the best run of any
    compared method (monotone per env, so profiles keep each env's ordering; the scale is relative to these runs)."""
    stacked = np.stack(list(results.final.values()))  # [methods, seeds, envs]
    low, high = np.min(stacked, axis=(0, 1)), np.max(stacked, axis=(0, 1))
    span = np.where(high > low, high - low, 1.0)
    return {label: (final - low) / span for label, final in results.final.items()}


def write_comparison(
    results: EvalResults, method: str, baselines: Sequence[str], out_dir: str | os.PathLike, seed: int = 0,
    reps: int = 2000,
) -> dict[str, Any]:
    """Probability of improvement of ``method`` over each baseline (rliable, every env a task) and performance
    profiles: ``comparison.md`` / ``comparison.json`` and ``performance_profile.png``; returns the rows and paths.
    Runs that never finished an episode (NaN) leave the comparison out, with the reason in ``comparison.md``."""
    from metarl.eval.comparison import improvement_rows, performance_profiles, plot_performance_profiles, verdict

    out_dir = Path(out_dir)
    md_path, json_path = out_dir / "comparison.md", out_dir / "comparison.json"
    if not all(np.isfinite(final).all() for final in results.final.values()):
        md_path.write_text("No comparison: some run never finished an episode (its final return is NaN).\n")
        json_path.write_text("[]")
        return {"rows": [], "table": md_path, "table_json": json_path}
    rows = improvement_rows(results.final, method, list(baselines), reps, seed)
    for row in rows:
        row["envs"] = "all"
    if len(results.env_names) > 1:  # and each env on its own
        for index, env_name in enumerate(results.env_names):
            one = {label: final[:, index : index + 1] for label, final in results.final.items()}
            rows += [{**row, "envs": env_name} for row in improvement_rows(one, method, list(baselines), reps, seed)]
    for row in rows:
        row["verdict"] = verdict(row)
    md_path.write_text(markdown_table(rows, COMPARISON_COLUMNS) + "\n")
    json_path.write_text(json.dumps(rows, indent=1))
    profiles, bands = performance_profiles(min_max_normalised(results), PROFILE_TAUS, reps, seed)
    profile = plot_performance_profiles(profiles, bands, PROFILE_TAUS, out_dir / "performance_profile.png",
                                        xlabel="final return, min-max normalised per env τ")
    return {"rows": rows, "table": md_path, "table_json": json_path, "profile": profile}
