"""Plug drift objectives (and optimizers) into PPO and measure how well it trains.

Objectives and optimizers are two axes: every objective is run with every
optimizer (:func:`combine_runs`), each on every env with the same seeds
(:func:`evaluate_objectives`). Runs with an explicit optimizer record the mean
|Δθ| per step of actor and critic inside the jitted run
(:mod:`metarl.optimizers.instrument`).

An artifact records the inner PPO it was meta-trained with
(:func:`recorded_ppo_settings`); :func:`ppo_settings` evaluates with those
unless the user set a key.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from metarl.agents.ppo import PPOConfig, make_train
from metarl.config import close_matches
from metarl.eval.optimizers import OptimizerSpec
from metarl.io.artifacts import find_artifact
from metarl.objectives.io import load_objective
from metarl.io.outputs import ProgressBar, pyplot
from metarl.meta.fitness import score_returns
from metarl.objectives import TALPO, make_objective
from metarl.optimizers.instrument import make_instrumented_train

FIXED_OBJECTIVES = ("ppo", "dpo")
HEATMAP_RATIOS = (0.5, 1.5)
HEATMAP_ADVANTAGES = (-2.0, 2.0)
TA_PROGRESS_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)
_EVAL_SALT = 7_919  # evaluation seeds differ from any meta-training seed


@dataclasses.dataclass
class ObjectiveSpec:
    label: str
    objective: Any
    meta_params: Any
    header: dict = dataclasses.field(default_factory=dict)  # the artifact's, for learned ones


@dataclasses.dataclass
class RunSpec:
    """One row of the comparison: an objective trained with an optimizer."""

    label: str
    objective: ObjectiveSpec
    optimizer: OptimizerSpec | None  # None: PPO's built-in Adam (not instrumented)


@dataclasses.dataclass
class EvalResults:
    returns: dict[str, dict[str, np.ndarray]]  # label -> env -> [seeds, updates]
    final: dict[str, np.ndarray]  # label -> [seeds, envs] final return
    env_names: list[str]
    timesteps: np.ndarray  # [updates]
    # label -> env -> group (actor/critic) -> [seeds, updates] mean |Δθ| per optimizer step
    magnitudes: dict[str, dict[str, dict[str, np.ndarray]]] = dataclasses.field(default_factory=dict)
    learned_optimizer_labels: list[str] = dataclasses.field(default_factory=list)


def resolve_objective(spec: str, clip_eps: float = 0.2, label: str | None = None) -> ObjectiveSpec:
    """``ppo`` / ``dpo``, an objective artifact ``.npz``, or a meta-train run directory."""
    name = str(spec)
    if name.lower() in FIXED_OBJECTIVES:
        objective = make_objective(name.lower(), **({"clip_eps": clip_eps} if name.lower() == "ppo" else {}))
        return ObjectiveSpec(label or name.upper(), objective, {})
    if not Path(name).exists():
        raise ValueError(f"objective must be ppo, dpo, an objective .npz or a run directory; {name!r} is none of these"
                         f"{close_matches(name.lower(), FIXED_OBJECTIVES)}")
    objective, meta_params, header = load_objective(find_artifact(name))
    return ObjectiveSpec(label or f"learned {header['name'].upper()}", objective, meta_params, header)


def recorded_ppo_settings(header: Mapping) -> dict | None:
    """The inner PPO settings an artifact was meta-trained with (``None`` when it records none)."""
    extra = header.get("extra") or {}
    resolved = extra.get("resolved_config") or {}
    recorded = resolved.get("inner") or extra.get("inner")
    return dict(recorded) if recorded else None


def ppo_settings(recorded: Mapping | None, given: Mapping, user_keys: Iterable[str]) -> tuple[dict, list[str]]:
    """The PPO settings to evaluate with, and one note per recorded value the user replaced.

    ``given`` is the ``agent`` section (defaults + the user's values);
    ``user_keys`` are the keys the user set. Without a recorded config,
    ``given`` is used as it is.
    """
    if recorded is None:
        return dict(given), []
    settings, notes = dict(recorded), []
    for key in user_keys:
        value = given[key]
        if key in settings and settings[key] != value:
            notes.append(f"agent.{key}={value} (recorded: {settings[key]})")
        settings[key] = value
    return settings, notes


def combine_runs(objectives: Sequence[ObjectiveSpec], optimizers: Sequence[OptimizerSpec]) -> list[RunSpec]:
    """Every objective with every optimizer; labels name only the axes that vary."""
    show_objective = len(objectives) > 1 or len(optimizers) == 1
    show_optimizer = len(optimizers) > 1
    runs = []
    for objective in objectives:
        for optimizer in optimizers:
            parts = ([objective.label] if show_objective else []) + ([optimizer.label] if show_optimizer else [])
            runs.append(RunSpec(" + ".join(parts), objective, optimizer))
    return runs


def as_run(spec: ObjectiveSpec | RunSpec) -> RunSpec:
    return spec if isinstance(spec, RunSpec) else RunSpec(spec.label, spec, None)


def train_returns(
    spec: ObjectiveSpec | RunSpec, env_name: str, ppo_config: PPOConfig, keys: jax.Array, overrides: dict | None = None
) -> np.ndarray:
    """Per-update episode returns ``[seeds, updates]`` of PPO with this objective (and optimizer)."""
    return train_with_magnitudes(spec, env_name, ppo_config, keys, overrides)[0]


def train_with_magnitudes(
    spec: ObjectiveSpec | RunSpec, env_name: str, ppo_config: PPOConfig, keys: jax.Array, overrides: dict | None = None,
    tasks: Any = None,
) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """Returns ``[seeds, updates]`` and, with an explicit optimizer, ``{group: [seeds, updates]}`` mean |Δθ|;
    ``tasks`` (a ``[seeds]`` params batch) gives each seed its own task."""
    run_spec = as_run(spec)
    objective, optimizer = run_spec.objective, run_spec.optimizer
    env, env_params = envs.make(env_name, **(overrides or {}))
    # meta_params as arguments, not baked-in constants: one program per objective
    # and optimizer *type*, so compiled programs are reused across weights.
    if optimizer is None:
        train = make_train(ppo_config, env, env_params, drift=objective.objective)
        run = jax.jit(jax.vmap(lambda k, p, t: train(k, p, task=t)[1]["episode_return"], in_axes=(0, None, 0)))
        return np.asarray(run(keys, objective.meta_params, tasks)), None
    if tasks is not None:
        raise ValueError("per-seed tasks are not supported with an explicit optimizer")
    train = make_instrumented_train(ppo_config, env, env_params, drift=objective.objective, optimizer=optimizer.optimizer)
    run = jax.jit(jax.vmap(lambda k, p, q: train(k, p, q if optimizer.learned else None), in_axes=(0, None, None)))
    returns, magnitudes = run(keys, objective.meta_params, optimizer.meta_params if optimizer.learned else None)
    return np.asarray(returns), {g: np.asarray(m) for g, m in magnitudes.items()}


def evaluate_objectives(
    specs: Sequence[ObjectiveSpec | RunSpec],
    env_names: Sequence[str],
    ppo_config: PPOConfig,
    num_seeds: int,
    seed: int = 0,
    final_fraction: float = 0.1,
    overrides: dict | None = None,
    tasks: Mapping[str, Any] | None = None,
) -> EvalResults:
    """Every objective (or objective + optimizer run) on every env with the same ``num_seeds`` seeds; ``tasks`` maps
    an env to a ``[num_seeds]`` params batch (seed ``i`` trains on task ``i``), other envs use their one task."""
    if num_seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {num_seeds}")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"objective labels must be distinct, got {labels}")
    runs = [as_run(s) for s in specs]
    returns: dict[str, dict[str, np.ndarray]] = {s.label: {} for s in runs}
    magnitudes: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    with ProgressBar(len(env_names) * len(runs), description=f"evaluate x{num_seeds} seeds", unit="run") as bar:
        for env_index, env_name in enumerate(env_names):
            env_key = jax.random.fold_in(jax.random.PRNGKey(seed + _EVAL_SALT), env_index)
            keys = jax.random.split(env_key, num_seeds)
            for run_index, spec in enumerate(runs):
                curves, steps = train_with_magnitudes(spec, env_name, ppo_config, keys, overrides,
                                                      (tasks or {}).get(env_name))
                returns[spec.label][env_name] = curves
                if steps is not None:
                    magnitudes.setdefault(spec.label, {})[env_name] = steps
                bar.callback(env_index * len(runs) + run_index + 1)
    final = {
        label: np.stack(
            [np.asarray(score_returns(jnp.asarray(per_env[e]), "final", final_fraction)) for e in env_names], axis=1
        )
        for label, per_env in returns.items()
    }
    timesteps = (np.arange(ppo_config.num_updates) + 1) * ppo_config.batch_size
    learned = [s.label for s in runs if s.optimizer is not None and s.optimizer.learned]
    return EvalResults(returns, final, list(env_names), timesteps, magnitudes, learned)


def merge_results(parts: Sequence[EvalResults], rename: Mapping[str, str] | None = None) -> EvalResults:
    """The evaluations of the same objectives on different envs as one, envs renamed by ``rename``."""
    rename = rename or {}
    first = parts[0]
    for part in parts[1:]:
        if list(part.final) != list(first.final) or not np.array_equal(part.timesteps, first.timesteps):
            raise ValueError("merge_results: the parts must evaluate the same objectives at the same timesteps")
    if any(p.magnitudes for p in parts):
        raise ValueError("merge_results: runs with an explicit optimizer are not merged")
    names = [rename.get(e, e) for p in parts for e in p.env_names]
    if len(set(names)) != len(names):
        raise ValueError(f"merge_results: env names repeat: {names}")
    returns = {label: {rename.get(e, e): p.returns[label][e] for p in parts for e in p.env_names}
               for label in first.returns}
    final = {label: np.concatenate([p.final[label] for p in parts], axis=1) for label in first.final}
    return EvalResults(returns, final, names, first.timesteps)


# --- the drift over (ratio, advantage) ----------------------------------------------------------
def drift_grid(spec: ObjectiveSpec, progress: float, size: int = 121) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratios, advantages, drift[adv, ratio]) on the heatmap grid."""
    ratios = np.linspace(*HEATMAP_RATIOS, size, dtype=np.float32)
    advantages = np.linspace(*HEATMAP_ADVANTAGES, size, dtype=np.float32)
    r, a = np.meshgrid(ratios, advantages)
    drift = spec.objective(spec.meta_params, jnp.asarray(r), jnp.asarray(a), jnp.float32(progress))
    return ratios, advantages, np.asarray(drift)


def plot_drift_heatmaps(specs: Sequence[ObjectiveSpec], path: str | os.PathLike) -> Path:
    """One panel per fixed objective; a row of progress values per temporally-aware one."""
    plt = pyplot()
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
