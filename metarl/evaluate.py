"""Plug any drift objective into PPO on any env and report how well it trains.

    metarl-evaluate objective=<artifact .npz | meta-train run dir | ppo | dpo> env=CartPole-v1 seeds=8

Writes to the run directory: ``per_seed_returns.csv`` (final and
training-mean return of every seed), ``aggregate.md`` / ``aggregate.json``
(IQM with 95% stratified-bootstrap intervals from rliable), 
``learning_curves.png`` and ``drift_heatmap.png`` (the drift over (r, A) as
in the LPO paper; TA-LPO at several training-progress values).
``compare=[ppo,dpo]`` adds baselines to the same table and plots.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from metarl.agents.ppo import PPOConfig, make_train
from metarl.artifacts import load_objective
from metarl.meta.fitness import as_env_list, env_overrides, score_returns
from metarl.objectives import TALPO, make_objective

FIXED_OBJECTIVES = ("ppo", "dpo")
ARTIFACT_NAMES = ("learned_objective.npz", "checkpoints/final_objective.npz")
HEATMAP_RATIOS = (0.5, 1.5)
HEATMAP_ADVANTAGES = (-2.0, 2.0)
TA_PROGRESS_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)
_EVAL_SALT = 7_919  # evaluation seeds differ from any meta-training seed


@dataclasses.dataclass
class ObjectiveSpec:
    label: str
    objective: Any
    meta_params: Any


@dataclasses.dataclass
class EvalResults:
    returns: dict[str, dict[str, np.ndarray]]  # label -> env -> [seeds, updates]
    final: dict[str, np.ndarray]  # label -> [seeds, envs] final return
    env_names: list[str]
    timesteps: np.ndarray  # [updates]


def resolve_objective(spec: str, clip_eps: float = 0.2, label: str | None = None) -> ObjectiveSpec:
    """``ppo`` / ``dpo``, an artifact ``.npz``, or a meta-train run directory."""
    name = str(spec)
    if name.lower() in FIXED_OBJECTIVES:
        objective = make_objective(name.lower(), **({"clip_eps": clip_eps} if name.lower() == "ppo" else {}))
        return ObjectiveSpec(label or name.upper(), objective, {})
    path = Path(name)
    if path.is_dir():
        found = [path / n for n in ARTIFACT_NAMES if (path / n).is_file()]
        if not found:
            raise ValueError(f"no {' or '.join(ARTIFACT_NAMES)} in {path}")
        path = found[0]
    if not path.is_file():
        raise ValueError(f"objective must be ppo, dpo, an objective .npz or a run directory; {name!r} is none of these")
    objective, meta_params, header = load_objective(path)
    return ObjectiveSpec(label or f"learned {header['name'].upper()}", objective, meta_params)


def train_returns(
    spec: ObjectiveSpec, env_name: str, ppo_config: PPOConfig, keys: jax.Array, overrides: dict | None = None
) -> np.ndarray:
    """Per-update episode returns ``[seeds, updates]`` of PPO with this objective."""
    train = make_train(ppo_config, *envs.make(env_name, **(overrides or {})), drift=spec.objective)
    # meta_params as an argument, not a baked-in constant: one program per objective
    # *type*, so compiled programs are reused across weights (and the compile cache).
    run = jax.jit(jax.vmap(lambda k, p: train(k, p)[1]["episode_return"], in_axes=(0, None)))
    return np.asarray(run(keys, spec.meta_params))


def evaluate_objectives(
    specs: Sequence[ObjectiveSpec],
    env_names: Sequence[str],
    ppo_config: PPOConfig,
    num_seeds: int,
    seed: int = 0,
    final_fraction: float = 0.1,
    overrides: dict | None = None,
) -> EvalResults:
    """Every objective on every env with the same ``num_seeds`` seeds."""
    if num_seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {num_seeds}")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"objective labels must be distinct, got {labels}")
    returns: dict[str, dict[str, np.ndarray]] = {s.label: {} for s in specs}
    for env_index, env_name in enumerate(env_names):
        keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed + _EVAL_SALT), env_index), num_seeds)
        for spec in specs:
            returns[spec.label][env_name] = train_returns(spec, env_name, ppo_config, keys, overrides)
    final = {
        label: np.stack(
            [np.asarray(score_returns(jnp.asarray(per_env[e]), "final", final_fraction)) for e in env_names], axis=1
        )
        for label, per_env in returns.items()
    }
    timesteps = (np.arange(ppo_config.num_updates) + 1) * ppo_config.batch_size
    return EvalResults(returns, final, list(env_names), timesteps)


def stratified_bootstrap_iqm(scores: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """IQM of ``scores[runs, tasks]`` with a 95% percentile CI, resampling runs within each task.

    The same estimator as rliable's ``StratifiedBootstrap`` + ``aggregate_iqm``,
    used when rliable's bootstrap cannot be imported (rliable 1.2 needs
    ``arch`` 7.x, which breaks on pandas 3).
    """
    from scipy import stats

    scores = np.asarray(scores, np.float64)
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    resampled = scores[rows, np.arange(tasks)]
    estimates = stats.trim_mean(resampled.reshape(reps, -1), 0.25, axis=1)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return float(stats.trim_mean(scores.ravel(), 0.25)), float(low), float(high)


@functools.cache
def _rliable() -> tuple[Any, Any] | None:
    try:
        from rliable import library, metrics
    except Exception:  # noqa: BLE001 - any failure in its arch/pandas import chain
        return None
    return library, metrics


def _rliable_iqm(scores: np.ndarray, reps: int, seed: int) -> tuple[float, float, float] | None:
    if _rliable() is None:
        return None
    rly, metrics = _rliable()
    np.random.seed(seed)  # rliable's bootstrap draws from NumPy's global generator
    point, interval = rly.get_interval_estimates(
        {"x": scores}, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps
    )
    return float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0])


def aggregate_rows(results: EvalResults, reps: int = 2000, seed: int = 0) -> list[dict]:
    """IQM and 95% stratified-bootstrap CI of the final return, per env and objective."""
    rows = []
    for env_index, env_name in enumerate(results.env_names):
        for label, final in results.final.items():
            score = final[:, env_index : env_index + 1]
            row = {"env": env_name, "objective": label, "seeds": int(score.shape[0]), "mean": float(np.nanmean(score))}
            if np.isfinite(score).all():
                estimate = _rliable_iqm(score, reps, seed)
                method = "rliable"
                if estimate is None:
                    estimate, method = stratified_bootstrap_iqm(score, reps, seed), "stratified_bootstrap"
                row |= {"iqm": estimate[0], "ci_low": estimate[1], "ci_high": estimate[2], "ci_method": method}
            else:  # a seed never finished an episode: no bootstrap
                row |= {"iqm": math.nan, "ci_low": math.nan, "ci_high": math.nan, "ci_method": "none"}
            rows.append(row)
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| env | objective | IQM final return | 95% CI | mean | seeds |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['env']} | {r['objective']} | {r['iqm']:.1f} | [{r['ci_low']:.1f}, {r['ci_high']:.1f}] "
            f"| {r['mean']:.1f} | {r['seeds']} |"
        )
    return "\n".join(lines)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curves(results: EvalResults, path: str | os.PathLike) -> Path:
    """Mean episode return (+- standard error over seeds) against environment steps."""
    plt = _pyplot()
    n = len(results.env_names)
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4), squeeze=False)
    for ax, env_name in zip(axes[0], results.env_names):
        for label, per_env in results.returns.items():
            curves = per_env[env_name]
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


def drift_grid(spec: ObjectiveSpec, progress: float, size: int = 121) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratios, advantages, drift[adv, ratio]) on the heatmap grid."""
    ratios = np.linspace(*HEATMAP_RATIOS, size, dtype=np.float32)
    advantages = np.linspace(*HEATMAP_ADVANTAGES, size, dtype=np.float32)
    r, a = np.meshgrid(ratios, advantages)
    drift = spec.objective(spec.meta_params, jnp.asarray(r), jnp.asarray(a), jnp.float32(progress))
    return ratios, advantages, np.asarray(drift)


def plot_drift_heatmaps(specs: Sequence[ObjectiveSpec], path: str | os.PathLike) -> Path:
    """One panel per fixed objective; a row of progress values per temporally-aware one."""
    plt = _pyplot()
    panels = []
    for spec in specs:
        values = TA_PROGRESS_VALUES if isinstance(spec.objective, TALPO) else (None,)
        panels += [(spec, p) for p in values]
    cols = min(len(panels), 5)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (spec, progress) in zip(axes.flat, panels):
        ratios, advantages, drift = drift_grid(spec, 0.0 if progress is None else progress)
        image = ax.imshow(
            drift, origin="lower", aspect="auto", cmap="viridis",
            extent=(ratios[0], ratios[-1], advantages[0], advantages[-1]),
        )
        ax.axvline(1.0, color="white", lw=0.6, ls="--")
        ax.axhline(0.0, color="white", lw=0.6, ls="--")
        title = spec.label if progress is None else f"{spec.label}, n/N = {progress:g}"
        ax.set(title=title, xlabel="ratio r", ylabel="advantage A")
        fig.colorbar(image, ax=ax, label="drift")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def write_results(results: EvalResults, specs: Sequence[ObjectiveSpec], out_dir: str | os.PathLike, seed: int = 0) -> dict[str, Path]:
    """All evaluation files; returns their paths by kind."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_seed": out_dir / "per_seed_returns.csv",
        "table": out_dir / "aggregate.md",
        "table_json": out_dir / "aggregate.json",
        "curves": out_dir / "learning_curves.png",
        "heatmap": out_dir / "drift_heatmap.png",
    }
    with paths["per_seed"].open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["objective", "env", "seed", "final_return", "mean_return"])
        for label, per_env in results.returns.items():
            for env_index, env_name in enumerate(results.env_names):
                means = np.nanmean(per_env[env_name], axis=1)
                for s, (final, mean) in enumerate(zip(results.final[label][:, env_index], means)):
                    writer.writerow([label, env_name, s, f"{final:.4f}", f"{mean:.4f}"])
    rows = aggregate_rows(results, seed=seed)
    paths["table"].write_text(markdown_table(rows) + "\n")
    paths["table_json"].write_text(json.dumps(rows, indent=1))
    plot_learning_curves(results, paths["curves"])
    plot_drift_heatmaps(specs, paths["heatmap"])
    return paths


def load_config(overrides: Sequence[str]) -> Any:
    """``configs/evaluate.yaml`` with ``key=value`` overrides (OmegaConf dot-list syntax).

    Not Hydra: in ``configs/`` ``objective`` is a config group (of meta-train),
    so Hydra would read ``objective=<path>`` as a group choice, not a value.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError

    config_file = Path(__file__).resolve().parent.parent / "configs" / "evaluate.yaml"
    cfg = OmegaConf.load(config_file)
    OmegaConf.set_struct(cfg, True)
    for item in overrides:
        key, sep, _ = item.partition("=")
        if not sep:
            raise ValueError(f"expected key=value, got {item!r}")
        OmegaConf.set_struct(cfg, not key.startswith("+"))  # +key=value may add a key
        try:
            cfg.merge_with(OmegaConf.from_dotlist([item.lstrip("+")]))
        except ConfigKeyError as error:
            raise ValueError(f"unknown option {key!r} (use +{key}=... to add one)") from error
    OmegaConf.set_struct(cfg, True)
    return cfg


def main(argv: Sequence[str] | None = None) -> None:
    import sys

    try:
        _evaluate_cli(load_config(sys.argv[1:] if argv is None else argv))
    except ValueError as error:  # bad user input: one clear line, no traceback
        print(f"metarl-evaluate: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None


def _evaluate_cli(cfg: Any) -> None:
    import time as _time

    from omegaconf import OmegaConf

    out_dir = Path(cfg.out_dir or f"outputs/evaluate/{_time.strftime('%Y-%m-%d_%H-%M-%S')}")
    ppo_config = PPOConfig(**OmegaConf.to_container(cfg.agent, resolve=True))
    targets = [str(cfg.objective)] + [str(c) for c in (cfg.compare or []) if str(c) != str(cfg.objective)]
    specs = [resolve_objective(t, ppo_config.clip_eps) for t in targets]
    env_cfg = cfg.env if isinstance(cfg.env, str) else OmegaConf.to_container(cfg.env)
    results = evaluate_objectives(
        specs, as_env_list(env_cfg), ppo_config, int(cfg.seeds), int(cfg.seed), float(cfg.final_fraction),
        env_overrides(env_cfg),
    )
    paths = write_results(results, specs, out_dir, int(cfg.seed))
    print(paths["table"].read_text())
    print(f"evaluation written to {out_dir}")


if __name__ == "__main__":
    main()
