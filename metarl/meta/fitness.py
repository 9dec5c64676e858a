"""Inner-loop fitness: train PPO with each candidate objective and score its returns.

For one candidate: for every env, ``num_seeds`` PPO runs (vmapped) with the
candidate's drift; each run is scored by its ``final`` return (mean episode
return over the last ``final_fraction`` of updates) or its training-``mean``
return; seeds are averaged; each env's score is divided by that env's
reference return (PPO's, measured once); envs are averaged.  All candidates
use the same key (common random numbers), so the ES compares objectives on
the same seeds within a generation.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

import envs
from metarl.agents.ppo import PPOConfig, make_train
from metarl.config import check_fields, option
from metarl.meta.task_sets import TaskSets
from metarl.objectives.ppo_clip import PPOClip

REDUCTIONS = ("final", "mean")
REFERENCE_FILE = "reference_returns.json"


@dataclasses.dataclass(frozen=True)
class FitnessConfig:
    CONFIG_SECTION: ClassVar[str] = "fitness"  # its errors name fitness.<field>

    num_seeds: int = option(2, ge=1)
    reduce: str = option("final", choices=REDUCTIONS)  # "final" | "mean" (training-averaged)
    final_fraction: float = option(0.1, gt=0, le=1)  # "final" = mean over this last fraction of updates (at least 1)
    reference_seeds: int = option(4, ge=1)  # seeds for the one-off PPO reference return

    def __post_init__(self) -> None:
        check_fields(self)


def as_env_list(env: Any) -> list[str]:
    """Env names from ``"Name"``, ``[names]`` or the ``env/`` group's ``{name: ..., overrides: ...}``."""
    if isinstance(env, dict):
        if "name" not in env:
            raise ValueError(f"env config needs a 'name', got keys {sorted(env)}")
        env = env["name"]
    names = [env] if isinstance(env, str) else list(env)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"env must name at least one environment, got {env!r}")
    return names


def env_overrides(env: Any) -> dict:
    """Task overrides from the ``env/`` group form (applied to every env)."""
    return dict(env.get("overrides") or {}) if isinstance(env, dict) else {}


def score_returns(episode_returns: jax.Array, reduce: str, final_fraction: float) -> jax.Array:
    """``[..., updates]`` per-update returns -> ``[...]`` score (NaN where no episode ended)."""
    num_updates = episode_returns.shape[-1]
    if reduce == "final":
        window = max(1, math.ceil(final_fraction * num_updates))
        episode_returns = episode_returns[..., num_updates - window :]
    return jnp.nanmean(episode_returns, axis=-1)


def seed_keys(key: jax.Array, env_index: int, num_seeds: int) -> jax.Array:
    return jax.random.split(jax.random.fold_in(key, env_index), num_seeds)


def make_normalised_fitness(
    trains: Sequence[Callable],
    env_names: Sequence[str],
    config: FitnessConfig,
    reference_returns: dict[str, float],
    train_args: Callable[[Any], tuple],
    tasks: Mapping[str, TaskSets] | None = None,
) -> Callable[[jax.Array, Any], jax.Array]:
    """``fitness(key, meta_params_batch) -> [population]`` (maximise).

    Each candidate's score is its reduced return per env divided by that env's
    reference return, averaged over envs; ``train_args(meta_params)`` gives the
    ``(objective_params, optimizer_params)`` passed to every ``train``. All
    candidates share the seeds (common random numbers) and, for an env with a
    training task set in ``tasks``, the tasks those seeds pick.
    """
    missing = [n for n in env_names if n not in reference_returns]
    if missing:
        raise ValueError(f"no reference return for env {missing[0]!r}")
    for name in env_names:
        if not abs(reference_returns[name]) > 1e-6:
            raise ValueError(f"reference return of {name!r} is {reference_returns[name]}; cannot normalise by it")
    scales = [abs(float(reference_returns[name])) for name in env_names]
    picks = [training_task_picker(tasks, name) for name in env_names]

    def one_candidate(key: jax.Array, meta_params: Any) -> jax.Array:
        per_env = []
        for index, (train, scale, pick) in enumerate(zip(trains, scales, picks)):
            keys = seed_keys(key, index, config.num_seeds)
            returns = jax.vmap(lambda k, t: train(k, *train_args(meta_params), task=t)[1]["episode_return"])(
                keys, None if pick is None else pick(keys))
            per_seed = score_returns(returns, config.reduce, config.final_fraction)
            per_env.append(jnp.mean(per_seed) / scale)
        return jnp.mean(jnp.stack(per_env))

    def fitness(key: jax.Array, meta_params_batch: Any) -> jax.Array:
        return jax.vmap(one_candidate, in_axes=(None, 0))(key, meta_params_batch)

    return fitness


def make_trains(env_names: Sequence[str], ppo_config: PPOConfig, overrides: dict | None = None,
                **train_kwargs: Any) -> list[Callable]:
    """One PPO ``train`` per env (``make_train``'s keyword arguments: ``drift=``, ``optimizer=``)."""
    return [make_train(ppo_config, *envs.make(name, **(overrides or {})), **train_kwargs) for name in env_names]


def training_task_picker(tasks: Mapping[str, TaskSets] | None, env_name: str) -> Callable[[jax.Array], Any] | None:
    """``keys -> [seeds]`` training tasks (:meth:`TaskSets.for_seeds`), or ``None`` (the env's one task)."""
    return tasks[env_name].for_seeds if tasks and env_name in tasks else None


def heldout_task_picker(tasks: Mapping[str, TaskSets] | None, env_name: str) -> Callable[[jax.Array], Any] | None:
    """Seed ``i`` of an evaluation gets held-out task ``i`` (:meth:`TaskSets.heldout_for`)."""
    return (lambda keys: tasks[env_name].heldout_for(keys.shape[0])) if tasks and env_name in tasks else None


def seed_scores(train: Callable, key: jax.Array, env_index: int, num_seeds: int, reduce: str, final_fraction: float,
                *train_args: Any, tasks: Callable[[jax.Array], Any] | None = None) -> jax.Array:
    """``[num_seeds]`` scores of ``train(seed key, *train_args)`` (jitted, vmapped over the env's seed keys);
    ``tasks(keys)`` gives each seed its task (e.g. :meth:`TaskSets.for_seeds`), ``None`` the env's one task."""
    keys = seed_keys(key, env_index, num_seeds)
    run = jax.jit(jax.vmap(lambda k, t: train(k, *train_args, task=t)[1]["episode_return"]))
    returns = run(keys, None if tasks is None else tasks(keys))
    return score_returns(returns, reduce, final_fraction)


def make_inner_fitness(
    objective: Any,
    env_names: Sequence[str],
    ppo_config: PPOConfig,
    config: FitnessConfig,
    reference_returns: dict[str, float],
    overrides: dict | None = None,
    tasks: Mapping[str, TaskSets] | None = None,
) -> Callable[[jax.Array, Any], jax.Array]:
    """Fitness of a population of drift meta-parameters (see :func:`make_normalised_fitness`)."""
    trains = make_trains(env_names, ppo_config, overrides, drift=objective)
    return make_normalised_fitness(trains, env_names, config, reference_returns, lambda mp: (mp,), tasks)


def measure_reference_returns(
    env_names: Sequence[str], ppo_config: PPOConfig, config: FitnessConfig, key: jax.Array, overrides: dict | None = None,
    tasks: Mapping[str, TaskSets] | None = None,
) -> dict[str, float]:
    """PPO-clip's score per env (over its training tasks, with a task set), with the fitness's reduction, over
    ``reference_seeds`` seeds."""
    trains = make_trains(env_names, ppo_config, overrides, drift=PPOClip(ppo_config.clip_eps))
    return {
        name: float(jnp.mean(seed_scores(train, key, index, config.reference_seeds, config.reduce,
                                         config.final_fraction, tasks=training_task_picker(tasks, name))))
        for index, (name, train) in enumerate(zip(env_names, trains))
    }


def stored_reference_returns(
    run_dir: Path, env_names: list[str], ppo_config: PPOConfig, config: FitnessConfig, seed: int, resume: bool,
    overrides: dict | None = None, tasks: Mapping[str, TaskSets] | None = None,
) -> dict[str, float]:
    """PPO's score per env: measured once per run into ``reference_returns.json``, read back on resume."""
    path = Path(run_dir) / REFERENCE_FILE
    if resume and path.is_file():
        stored = json.loads(path.read_text())
        if sorted(stored["returns"]) != sorted(env_names):
            raise ValueError(f"resume: {path} has envs {sorted(stored['returns'])}, this run has {sorted(env_names)}")
        return stored["returns"]
    returns = measure_reference_returns(env_names, ppo_config, config, jax.random.PRNGKey(seed + 1), overrides, tasks)
    _write_json_atomic(path, {"returns": returns, "seeds": config.reference_seeds, "reduce": config.reduce})
    return returns


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
