"""Fitness of learned optimizers for the one ES loop.

:func:`make_fitness` is the optimizer counterpart of
:func:`metarl.meta.fitness.make_inner_fitness`: every candidate trains PPO
(fixed drift, PPO-clip by default) with ``optimizer.transform(candidate)``
and is scored by its return divided by the Adam-PPO reference return (as
OPEN). The job (``metarl-meta-train objective=ppo optimizer=learned``) is
:mod:`metarl.jobs.meta_train_optimizer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax

from metarl.agents.ppo import PPOConfig
from metarl.meta.fitness import FitnessConfig, heldout_task_picker, make_normalised_fitness, make_trains, seed_scores
from metarl.meta.task_sets import TaskSets
from metarl.objectives import make_objective
from metarl.optimizers import build_optimizer
from metarl.optimizers.io import load_learned_optimizer
from metarl.optimizers.learned import LearnedOptimizer

LEARNED_DRIFTS = ("lpo", "ta_lpo")


def make_fitness(
    optimizer: LearnedOptimizer,
    env_names: Sequence[str],
    ppo_config: PPOConfig,
    config: FitnessConfig,
    reference_returns: dict[str, float],
    drift: Any = None,
    overrides: dict | None = None,
    tasks: Mapping[str, TaskSets] | None = None,
) -> Callable[[jax.Array, Any], jax.Array]:
    """``fitness(key, meta_params_batch) -> [population]`` of learned-optimizer candidates (maximise)."""
    trains = make_trains(env_names, ppo_config, overrides, drift=drift, optimizer=optimizer)
    return make_normalised_fitness(trains, env_names, config, reference_returns, lambda mp: (None, mp), tasks)


def evaluate_returns(
    optimizer: Any, meta_params: Any, env_names: Sequence[str], ppo_config: PPOConfig, seeds: int,
    key: jax.Array, final_fraction: float, drift: Any = None, overrides: dict | None = None,
    tasks: Mapping[str, TaskSets] | None = None,
) -> dict[str, list[float]]:
    """Final return per fresh seed and env (seed ``i`` on held-out task ``i`` of an env with task sets);
    ``optimizer=None`` is PPO's default Adam."""
    trains = make_trains(env_names, ppo_config, overrides, drift=drift, optimizer=optimizer)
    return {
        name: [float(x) for x in seed_scores(train, key, index, seeds, "final", final_fraction, None, meta_params,
                                             tasks=heldout_task_picker(tasks, name))]
        for index, (name, train) in enumerate(zip(env_names, trains))
    }


def fixed_drift(objective_cfg: dict, clip_eps: float) -> Any:
    """The drift every candidate trains with: a hand-designed objective (default PPO-clip at the inner clip)."""
    cfg = dict(objective_cfg or {"name": "ppo"})
    name = cfg.pop("name", "ppo")
    if name in LEARNED_DRIFTS:
        raise ValueError(f"meta-training an optimizer needs a fixed objective (ppo, dpo), got {name!r}")
    if name == "ppo":
        cfg.setdefault("clip_eps", clip_eps)
    return make_objective(name, **cfg)


def load_or_build(optimizer_cfg: dict) -> tuple[LearnedOptimizer, Any | None]:
    """The optimizer to evolve and, when ``load`` names a file, the mean to start from."""
    if not optimizer_cfg:
        raise ValueError("meta-training an optimizer needs optimizer=learned")
    if optimizer_cfg.get("load"):
        optimizer, meta_params, _ = load_learned_optimizer(optimizer_cfg["load"])
        return optimizer, meta_params
    optimizer = build_optimizer(optimizer_cfg)
    if not isinstance(optimizer, LearnedOptimizer):
        raise ValueError(f"optimizer {optimizer_cfg.get('name')!r} has no meta-parameters to train; use optimizer=learned")
    return optimizer, None
