"""Plots of curriculum runs: learning curves, what the teacher samples, the PLR buffer.

Every function takes host data (``metarl.eval.curriculum_bench.SegmentedRun`` and its
teacher-state snapshots, batched over seeds) and writes one PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.eval.curriculum_bench import SegmentedRun
from metarl.stats import bootstrap_ci


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _seed(tree: Any, i: int = 0) -> Any:
    return jax.tree.map(lambda x: jnp.asarray(x[i]), tree)


def _stage_indices(n: int, stages: int) -> list[int]:
    return sorted({int(round(x)) for x in np.linspace(1, n - 1, stages)})


def plot_curves(runs: Sequence[SegmentedRun], path: str | Path, title: str, ylabel: str = "% held-out mastered") -> None:
    """Mean over seeds with a 95% bootstrap band, one line per teacher."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=90)
    for run in runs:
        mean, low, high = (100 * x for x in bootstrap_ci(run.mastered))
        ax.plot(run.timesteps, mean, label=f"{run.teacher} (n={run.mastered.shape[0]})")
        ax.fill_between(run.timesteps, low, high, alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_task_samples(
    teacher: Any, env: Any, run: SegmentedRun, path: str | Path, stages: int = 4, n: int = 600, seed: int = 0
) -> None:
    """Tasks the teacher would sample at a few training stages (one seed), infeasible region shaded.

    For 2-D continuous task spaces (Stump Track: height x spacing); feasibility
    comes from ``env.is_feasible``.
    """
    plt = _pyplot()
    space = env.task_space
    if space.dim != 2:
        raise ValueError(f"plot_task_samples needs a 2-D task space, got dim {space.dim}")
    (x_name, y_name), low, high = space.names, np.asarray(space.low), np.asarray(space.high)
    gx, gy = np.meshgrid(np.linspace(low[0], high[0], 120), np.linspace(low[1], high[1], 120))
    grid = jax.vmap(lambda v: space.from_vector(v, space.default))(jnp.asarray(np.stack([gx.ravel(), gy.ravel()], 1)))
    feasible = np.asarray(jax.vmap(env.is_feasible)(grid)).reshape(gx.shape)

    picks = _stage_indices(len(run.snapshots), stages)
    fig, axes = plt.subplots(1, len(picks), figsize=(3.2 * len(picks), 3.2), dpi=80, sharey=True)
    for ax, i in zip(np.atleast_1d(axes), picks):
        _, tasks = teacher.sample(_seed(run.snapshots[i], seed), jax.random.PRNGKey(100 + i), n)
        xy = np.asarray(jax.vmap(space.to_vector)(tasks))
        ax.contourf(gx, gy, ~feasible, levels=[0.5, 1.5], colors=["0.85"])
        ax.scatter(xy[:, 0], xy[:, 1], s=3, alpha=0.5)
        share = float(np.mean(np.asarray(jax.vmap(env.is_feasible)(tasks))))
        ax.set_title(f"{run.timesteps[i] / 1000:.0f}k steps, {100 * share:.0f}% feasible", fontsize=9)
        ax.set_xlabel(x_name)
    np.atleast_1d(axes)[0].set_ylabel(y_name)
    fig.suptitle(f"{run.teacher}: sampled tasks (grey = infeasible), seed {seed}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_arm_probabilities(teacher: Any, run: SegmentedRun, path: str | Path) -> None:
    """Bandit arm probabilities over training (mean over seeds), as a heat map."""
    plt = _pyplot()
    probs = np.stack([np.asarray(jax.vmap(teacher.probabilities)(jax.tree.map(jnp.asarray, s))) for s in run.snapshots])
    mean = probs.mean(axis=1)  # [evaluations, arms]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=90)
    image = ax.imshow(mean.T, aspect="auto", origin="lower", cmap="viridis",
                      extent=(run.timesteps[0], run.timesteps[-1], -0.5, mean.shape[1] - 0.5))
    fig.colorbar(image, ax=ax, label="probability")
    ax.set_xlabel("env steps")
    ax.set_ylabel("arm (row-major bins of the task space)")
    ax.set_title(f"{run.teacher}: arm probabilities (mean over {probs.shape[1]} seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_buffer(run: SegmentedRun, path: str | Path, stages: int = 3, seed: int = 0) -> None:
    """PLR buffer: score vs staleness at a few stages (one seed); fill ratio and replay share over time."""
    plt = _pyplot()
    picks = _stage_indices(len(run.snapshots), stages)
    fig, axes = plt.subplots(1, len(picks) + 1, figsize=(3.3 * (len(picks) + 1), 3.2), dpi=80)
    for ax, i in zip(axes[:-1], picks):
        buf = _seed(run.snapshots[i], seed).buffer
        filled = np.asarray(buf.filled)
        staleness = np.asarray(buf.episode_count - buf.timestamps)[filled]
        ax.scatter(staleness, np.asarray(buf.scores)[filled], s=4, alpha=0.5)
        ax.set_title(f"{run.timesteps[i] / 1000:.0f}k steps, {filled.sum()} levels", fontsize=9)
        ax.set_xlabel("staleness (episodes)")
    axes[0].set_ylabel("score")

    fill = np.stack([np.asarray(s.buffer.filled).mean(axis=-1) for s in run.snapshots])  # [evals, seeds]
    counts = np.stack([np.asarray(s.branch_counts) for s in run.snapshots])  # [evals, seeds, 3]
    step = np.diff(counts, axis=0)
    replay = step[..., 1] / np.maximum(step.sum(axis=-1), 1)  # share of batches that were replays, per segment
    ax = axes[-1]
    ax.plot(run.timesteps, fill.mean(axis=1), label="fill ratio")
    ax.step(run.timesteps[1:], replay.mean(axis=1), where="pre", label="replay share (segment)")
    if counts[..., 2].max() > 0:
        ax.step(run.timesteps[1:], (step[..., 2] / np.maximum(step.sum(-1), 1)).mean(1), where="pre", label="mutate share")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("env steps")
    ax.set_title(f"mean over {fill.shape[1]} seeds", fontsize=9)
    ax.legend(fontsize=7)
    fig.suptitle(f"{run.teacher}: level buffer", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
