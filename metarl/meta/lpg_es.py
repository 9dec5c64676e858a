"""LPG rules by ES: a stateful fitness for the one ES loop, with antithetic task sampling and a level teacher.

:class:`LPGFitness` is ``fitness(key, population, teacher_state) -> (fitness,
teacher_state, metrics)`` for :func:`metarl.meta.trainer.run_meta_training`
(the teacher state rides along in the loop and its checkpoints, so a level
buffer survives a resume). Within one generation:

1. the ES population is ``[mean + s*z_1..z_{P/2}, mean - s*z_1..z_{P/2}]``
   (:mod:`metarl.meta.es` / evosax OpenES order: pair ``i`` = ``(i, i + P/2)``);
2. the teacher gives ``P/2`` levels, one per antithetic pair; each pair also
   shares one agent-initialisation key and one lifetime (fixed, or
   log-uniform for TA-LPG), so the pair differs only in the rule
   (antithetic task sampling, LPG / GROOVE);
3. every candidate trains an agent with its rule (vmapped population,
   chunked/sharded as the trainer config says);
4. fitness: the pairwise rank ``+1 / -1 / 0`` (better / worse / tie member
   of each pair; GROOVE's 1/0 up to a constant, which ES gradients ignore)
   fed to OpenES without further shaping, or the raw final return;
5. the teacher is told the pair-mean return per level (GROOVE scores the
   level by algorithmic regret against its cached A2C return).

The job (``metarl-meta-train objective=lpg|ta_lpg``) is :mod:`metarl.jobs.meta_train_lpg`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from curricula.base import Feedback
from curricula.factory import make_teacher
from curricula.groove import GROOVE
from metarl.config import check_fields, option
from metarl.meta.es import ESConfig
from metarl.meta.settings import split_meta_config
from metarl.meta.trainer import make_population_evaluator

FITNESSES = ("pairwise_rank", "return")
TEACHERS = ("groove", "domain_randomization", "fixed")
RULE_OBJECTIVES = ("lpg", "ta_lpg")
GROOVE_KEYS = ("capacity", "replay_prob", "staleness_coef", "temperature", "min_fill_ratio", "duplicate_check")


# --- antithetic pairing ----------------------------------------------------------------
def antithetic_pair_ranks(returns: jax.Array) -> jax.Array:
    """Pairwise rank of mirrored candidates: ``+1`` better, ``-1`` worse, ``0`` tie.

    ``returns[i]`` and ``returns[i + P/2]`` are the two members of pair ``i``
    (``theta + eps_i`` and ``theta - eps_i``). A non-finite return loses to a
    finite one; two non-finite returns tie.
    """
    returns = jnp.asarray(returns, jnp.float32)
    if returns.ndim != 1 or returns.shape[0] % 2:
        raise ValueError(f"antithetic ranking needs an even 1-D population, got shape {returns.shape}")
    half = returns.shape[0] // 2
    safe = jnp.where(jnp.isfinite(returns), returns, -jnp.inf)
    plus, minus = safe[:half], safe[half:]
    sign = (plus > minus).astype(jnp.float32) - (plus < minus).astype(jnp.float32)
    return jnp.concatenate([sign, -sign])


def mirror(tree: Any) -> Any:
    """Per-pair values ``[P/2, ...]`` -> per-candidate ``[P, ...]`` in the ES order (both halves equal)."""
    return jax.tree.map(lambda x: jnp.concatenate([x, x], axis=0), tree)


def sample_lifetimes(key: jax.Array, n: int, lifetime: int, lifetime_min: int | None) -> jax.Array:
    """``n`` lifetimes: all ``lifetime``, or log-uniform integers in ``[lifetime_min, lifetime]`` (TA-LPG)."""
    if lifetime_min is None or lifetime_min >= lifetime:
        return jnp.full((n,), lifetime, jnp.int32)
    u = jax.random.uniform(key, (n,), minval=math.log(lifetime_min), maxval=math.log(lifetime + 1))
    return jnp.clip(jnp.floor(jnp.exp(u)), lifetime_min, lifetime).astype(jnp.int32)


# --- configuration -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LPGMetaConfig:
    """The ``objective`` section of ``objective=lpg|ta_lpg`` (besides ``rule`` and ``agent``)."""

    name: str = option("lpg", choices=RULE_OBJECTIVES)
    lifetime: int = option(50, ge=1)  # agent updates (the max lifetime; antagonist A2C trains this long)
    lifetime_min: int | None = option(None, ge=1)  # set: log-uniform lifetimes in [lifetime_min, lifetime] (TA-LPG)
    fitness: str = option("pairwise_rank", choices=FITNESSES)  # "pairwise_rank" | "return"
    rule: dict = dataclasses.field(default_factory=dict)  # LPGConfig fields
    agent: dict = dataclasses.field(default_factory=dict)  # AgentConfig fields
    eval: dict = dataclasses.field(default_factory=dict)  # metarl.eval.lpg settings after training

    def __post_init__(self) -> None:
        check_fields(self)
        if self.lifetime_min is not None and self.lifetime_min > self.lifetime:
            raise ValueError(f"LPGMetaConfig.lifetime_min must lie in [1, lifetime={self.lifetime}], "
                             f"got {self.lifetime_min}")


def build_teacher(teacher_cfg: dict | None, task_space: Any, antagonist_fn: Callable, batch_size: int) -> Any:
    """A level sampler for meta-training (``teacher/`` group): groove | domain_randomization | fixed."""
    cfg = dict(teacher_cfg or {"name": "groove"})
    name = cfg.get("name")
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r} for LPG meta-training; choose one of {list(TEACHERS)}")
    if name != "groove":
        return make_teacher(cfg, task_space)  # DR and fixed (with its task overrides) as for PPO curricula
    cfg.pop("name")
    cfg.pop("label", None)  # a display name only
    unknown = sorted(set(cfg) - set(GROOVE_KEYS))
    if unknown:
        raise ValueError(f"unknown teacher.{unknown[0]} for groove (valid: {', '.join(sorted(GROOVE_KEYS))})")
    return GROOVE(antagonist_fn, batch_size=batch_size, task_space=task_space, **cfg)


def es_config_for(meta_cfg: dict, fitness: str) -> tuple[ESConfig, dict]:
    """ES settings; pairwise ranks are already shaped, so they go to OpenES unchanged (identity)."""
    es_config, trainer = split_meta_config(meta_cfg)
    if fitness == "pairwise_rank":
        if not es_config.antithetic:
            raise ValueError("objective.fitness=pairwise_rank needs meta.antithetic=true")
        if es_config.evosax_name.lower().replace("_", "") not in ("openes", "pgpe", "ars"):
            raise ValueError(f"pairwise_rank fitness needs a gradient ES (OpenES); got meta.strategy={es_config.strategy}")
        if es_config.fitness_shaping == "auto":
            es_config = dataclasses.replace(es_config, fitness_shaping="identity")
    return es_config, trainer


# --- the fitness ----------------------------------------------------------------------
@dataclasses.dataclass(eq=False)  # hashable by identity: it is traced inside the jitted generation
class LPGFitness:
    """``fitness(key, population, teacher_state) -> (fitness, teacher_state, metrics)`` (see module docstring)."""

    teacher: Any
    train: Callable  # train(key, meta_params, level, num_updates, lifetime) -> LifetimeResult
    config: LPGMetaConfig
    population_size: int
    chunk_size: int | None = None  # train the population in sequential chunks of this size
    shard: bool = True

    def __post_init__(self) -> None:
        if self.population_size < 2 or self.population_size % 2:
            raise ValueError(f"antithetic pairs need an even population_size, got {self.population_size}")
        self._final_returns = make_population_evaluator(
            self._train_candidates, self.population_size, self.chunk_size, self.shard)

    @property
    def pairs(self) -> int:
        return self.population_size // 2

    def _train_candidates(self, _: jax.Array, candidates: tuple) -> jax.Array:
        meta_params, agent_keys, levels, lifetimes = candidates

        def train(key, params, level, lifetime):
            return self.train(key, params, level, num_updates=self.config.lifetime, lifetime=lifetime).final_return

        return jax.vmap(train)(agent_keys, meta_params, levels, lifetimes)

    def __call__(self, key: jax.Array, population: Any, teacher_state: Any) -> tuple[jax.Array, Any, dict]:
        level_key, agent_key, life_key = jax.random.split(key, 3)
        teacher_state, levels = self.teacher.sample(teacher_state, level_key, self.pairs)
        lifetimes = sample_lifetimes(life_key, self.pairs, self.config.lifetime, self.config.lifetime_min)
        agent_keys = jax.random.split(agent_key, self.pairs)
        returns = self._final_returns(key, (population, mirror(agent_keys), mirror(levels), mirror(lifetimes)))
        fitness = antithetic_pair_ranks(returns) if self.config.fitness == "pairwise_rank" else returns
        # ranks stay finite when every agent failed; NaN tells the loop to stop
        fitness = jnp.where(jnp.any(jnp.isfinite(returns)), fitness, jnp.nan)
        pair_return = 0.5 * (returns[: self.pairs] + returns[self.pairs :])
        teacher_state = self.teacher.update(teacher_state, levels, Feedback.from_returns(pair_return))
        metrics = {
            "return_mean": jnp.nanmean(returns),
            "return_max": jnp.nanmax(returns),
            "returns_nonfinite": jnp.sum(~jnp.isfinite(returns)),
            "lifetime_mean": jnp.mean(lifetimes.astype(jnp.float32)),
        }
        if isinstance(self.teacher, GROOVE):
            metrics |= {
                "regret_mean": jnp.mean(self.teacher.regret(teacher_state, pair_return)),
                "antagonist_return_mean": jnp.mean(teacher_state.antagonist),
                "replay": teacher_state.last_was_replay.astype(jnp.int32),
                "buffer_size": teacher_state.buffer.size,
                "antagonist_evaluations": teacher_state.antagonist_evaluations,
            }
        return fitness, teacher_state, metrics
