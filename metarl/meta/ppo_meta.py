"""ES over meta-parameters scored by inner PPO runs (learned objectives, learned optimizers).

Both PPO-based meta-train jobs read the same sections (``inner``, ``meta``,
``fitness``, ``env``, ``seed``, ``resume``: :class:`PPOMetaSettings`),
normalise fitness by PPO's reference return per env (measured once per run,
``reference_returns.json``) and run the one ES loop; :func:`evolve` is that
shared part, :func:`artifact_extra` the run description their artifacts carry.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from metarl.agents.ppo import PPOConfig
from metarl.config import as_int, build_dataclass, plain
from metarl.meta.es import ESConfig, EvolutionStrategy
from metarl.meta.fitness import FitnessConfig, as_env_list, env_overrides, stored_reference_returns
from metarl.meta import task_sets
from metarl.meta.settings import es_settings, section
from metarl.meta.task_sets import TaskSets
from metarl.meta.trainer import MetaTrainResult, TrainerConfig, run_meta_training


@dataclasses.dataclass(frozen=True)
class PPOMetaSettings:
    ppo: PPOConfig
    es: ESConfig
    trainer: TrainerConfig
    fitness: FitnessConfig
    env_names: list[str]
    overrides: dict  # env.overrides, applied to every env (fitness, reference and evaluation)
    seed: int
    resume: bool
    tasks: dict | None = None  # env.task_sets as given (train/heldout/seed), None: each env's one task

    @classmethod
    def from_config(cls, cfg: Any) -> PPOMetaSettings:
        es_config, trainer_config = es_settings(cfg)
        env = plain(cfg.get("env"))
        names, overrides = as_env_list(env), env_overrides(env)
        tasks = task_sets.parse(env.get("task_sets") if isinstance(env, dict) else None)
        for name in names if tasks else ():
            task_sets.check(name, overrides)  # drawn on first use, after every other setting is checked
        return cls(
            ppo=build_dataclass(PPOConfig, section(cfg, "inner"), "inner"),
            es=es_config,
            trainer=trainer_config,
            fitness=build_dataclass(FitnessConfig, section(cfg, "fitness"), "fitness"),
            env_names=names,
            overrides=overrides,
            seed=as_int(cfg.get("seed", 0), "seed"),
            resume=bool(cfg.get("resume", False)),
            tasks=tasks,
        )

    @functools.cached_property
    def task_sets(self) -> dict[str, TaskSets] | None:
        """Each meta-training env's train and held-out task sets (from ``env.task_sets``), or ``None``."""
        return task_sets.draw_all(self.env_names, self.overrides, self.tasks)


def evolve(
    settings: PPOMetaSettings,
    run_dir: Path,
    fitness_for: Callable[[dict[str, float]], Callable],
    init_mean_for: Callable[[jax.Array], Any],
    name: str,
    metadata: dict,
) -> tuple[MetaTrainResult, dict[str, float]]:
    """Measure (or, on resume, read) the PPO references, then evolve; returns (result, references).

    ``fitness_for(references)`` builds the population fitness, ``init_mean_for(key)``
    the initial mean; ``metadata`` is completed with envs, overrides, references and seed.
    """
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    refs = stored_reference_returns(run_dir, settings.env_names, settings.ppo, settings.fitness, settings.seed,
                                    settings.resume, settings.overrides, settings.task_sets)
    init_key, es_key = jax.random.split(jax.random.PRNGKey(settings.seed))
    init_mean = init_mean_for(init_key)
    metadata = {**metadata, "envs": settings.env_names, "env_overrides": settings.overrides, "env_tasks": settings.tasks,
                "reference_returns": refs, "seed": settings.seed}
    result = run_meta_training(
        EvolutionStrategy(settings.es, init_mean), fitness_for(refs), init_mean, es_key, settings.trainer, run_dir,
        resume=settings.resume, metadata=metadata, description=f"ES {settings.es.evosax_name} {name}",
    )
    return result, refs


def artifact_extra(settings: PPOMetaSettings, cfg: Any, refs: dict[str, float]) -> dict:
    """What a PPO-based meta-train artifact records besides its parameters: the run and the resolved config."""
    return {"generations": settings.trainer.generations, "envs": settings.env_names,
            "env_overrides": settings.overrides, "env_tasks": settings.tasks, "reference_returns": refs,
            "seed": settings.seed,
            "strategy": settings.es.evosax_name, "inner": section(cfg, "inner"), "resolved_config": plain(cfg)}
