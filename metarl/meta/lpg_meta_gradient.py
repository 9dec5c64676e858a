"""LPG rules by meta-gradients: a population of agents at different points of their lifetimes.

    metarl-meta-train objective=lpg_mg objective.level=small objective.meta_steps=600 run_dir=outputs/lpg_mg

Every meta step (:class:`metarl.lpg.meta_gradient.MetaGradient`) moves each
of ``num_agents`` agents ``inner_updates`` LPG updates further, differentiates
an A2C-style objective of the updated agents through those updates and takes
one clipped Adam step on the rule. Agents that reach their lifetime are
replaced by fresh agents on **new** levels drawn from the training
distribution (``teacher=dr``: domain randomisation) or from a level pool
(``teacher=groove``: algorithmic regret against a cached A2C return;
``teacher=plr``: positive value loss; :mod:`curricula.level_pool`, refreshed
with ``refresh_levels`` new levels after every chunk). ``lifetime_min`` gives
TA-LPG's log-uniform lifetimes; the first lifetimes are staggered so that the
batch always mixes young and old agents (the rule must work at every stage).

:func:`meta_train` runs ``chunk`` meta steps per jitted call through the one
chunked loop (:func:`metarl.meta.gradient_loop.run_gradient_loop`: one
``meta_log.jsonl`` record and one orbax checkpoint of the whole learner state
per chunk, exact resume, ``time_limit_s`` for equal-wall-time comparisons) and
writes ``learned_rule.npz`` (:mod:`metarl.lpg.artifact`), which
:mod:`metarl.eval.lpg` evaluates. The job is :mod:`metarl.jobs.meta_train_lpg_mg`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import optax

from curricula.level_pool import UNPLAYED, LevelPool, slots_in_use
from envs.gridworld import GridWorld
from envs.gridworld_levels import DISTRIBUTIONS
from metarl.config import check_fields, option
from metarl.lpg.a2c import make_a2c_lifetime
from metarl.lpg.artifact import ARTIFACT, build_agent_config, build_rule, save_rule
from metarl.lpg.meta_gradient import DEFAULT_REGULARISERS, MetaGradient, MetaGradientState
from metarl.meta.gradient_loop import run_gradient_loop

TEACHERS = ("dr", "groove", "plr")


TABULAR_LEVELS = tuple(name for name, dist in DISTRIBUTIONS.items() if dist.tabular)


@dataclasses.dataclass(frozen=True)
class MetaGradientRunConfig:
    level: str = option("small", choices=TABULAR_LEVELS)  # training distribution (envs.gridworld_levels, tabular)
    num_agents: int = option(16, ge=1)
    meta_steps: int = option(600, ge=1)
    chunk: int = option(25, ge=1)  # meta steps per jitted call: one log record and one checkpoint each
    inner_updates: int = option(5, ge=1)  # K
    agent_lifetime: int = option(50, ge=1)  # agent updates before replacement (the max with lifetime_min)
    lifetime_min: int | None = option(None, ge=1)  # TA-LPG: log-uniform lifetimes in [lifetime_min, agent_lifetime]
    meta_lr: float = option(1e-3, gt=0)  # GROOVE: 1e-4 over 3e4 steps; a CPU run has hundreds
    meta_clip: float = option(0.5, gt=0)
    regularisers: tuple[float, float, float, float] = option(DEFAULT_REGULARISERS, ge=0)
    rule: dict = dataclasses.field(default_factory=lambda: {"hidden": 32, "pred_dim": 8})
    agent: dict = dataclasses.field(default_factory=lambda: {"num_envs": 16, "num_steps": 20, "eval_episodes": 8})
    seed: int = 0
    time_limit_s: float | None = option(None, gt=0)  # stop after the chunk that crosses it (and save the rule)
    teacher: str = option("dr", choices=TEACHERS)  # "dr" | "groove" | "plr"
    pool_capacity: int = option(64, ge=1)  # groove / plr: levels in the pool
    refresh_levels: int = option(16, ge=1)  # groove / plr: new levels swapped in after every chunk

    def __post_init__(self):
        check_fields(self)
        if self.lifetime_min is not None and self.lifetime_min > self.agent_lifetime:
            raise ValueError(f"MetaGradientRunConfig.lifetime_min must lie in [1, agent_lifetime="
                             f"{self.agent_lifetime}], got {self.lifetime_min}")


def training_env(level: str) -> GridWorld:
    """The smallest tabular grid world that holds every level of the distribution (small agent tables)."""
    dist = DISTRIBUTIONS[level]
    side = max(dist.grid_sizes[1], dist.wall_side)
    return GridWorld(side, dist.n_objs[1], dist.n_types, tabular=True, level=level)


def build_learner(config: MetaGradientRunConfig) -> tuple[MetaGradient, GridWorld]:
    rule = build_rule(config.rule, time_aware=config.lifetime_min is not None)
    agent_config = build_agent_config(config.agent)
    env = training_env(config.level)
    teacher = None if config.teacher == "dr" else LevelPool(
        config.pool_capacity, "regret" if config.teacher == "groove" else "pvl")
    learner = MetaGradient(
        agent_config, env, rule, inner_updates=config.inner_updates,
        meta_optimizer=optax.chain(optax.clip_by_global_norm(config.meta_clip), optax.adam(config.meta_lr)),
        regularisers=tuple(config.regularisers), agent_lifetime=config.agent_lifetime,
        level_sampler=env.task_space.sample_batch, lifetime_min=config.lifetime_min, stagger=True,
        teacher=teacher,
    )
    return learner, env


def antagonist_returns(learner: MetaGradient, config: MetaGradientRunConfig):
    """Jitted ``(key, levels [m]) -> A2C evaluation returns [m]`` after ``agent_lifetime`` updates (GROOVE's G_A2C)."""
    if config.teacher != "groove":
        return lambda key, levels: jnp.zeros(jax.tree.leaves(levels)[0].shape[0], jnp.float32)
    a2c = make_a2c_lifetime(learner.agent_config, learner.env)

    def returns(key, levels):
        keys = jax.random.split(key, jax.tree.leaves(levels)[0].shape[0])
        return jax.vmap(lambda k, lvl: a2c(k, lvl, num_updates=config.agent_lifetime).final_return)(keys, levels)

    return jax.jit(returns)


def batched_antagonist(antagonist: Any, key: jax.Array, levels: Any, batch: int) -> jax.Array:
    """A2C returns for many levels in batches of ``batch`` (the refresh size: one compiled program for both)."""
    n = jax.tree.leaves(levels)[0].shape[0]
    out = []
    for i, start in enumerate(range(0, n, batch)):
        index = jnp.minimum(jnp.arange(start, start + batch), n - 1)  # the last batch repeats its final level
        out.append(antagonist(jax.random.fold_in(key, i), jax.tree.map(lambda x: x[index], levels)))
    return jnp.concatenate(out)[:n]


def initial_state(learner: MetaGradient, env: GridWorld, config: MetaGradientRunConfig,
                  antagonist: Any = None) -> MetaGradientState:
    k_rule, k_levels, k_learner, k_pool = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    meta_params = learner.rule.init(k_rule)
    if learner.teacher is None:
        levels = env.task_space.sample_batch(k_levels, config.num_agents)
        return learner.init(k_learner, meta_params, levels)
    k_a2c, k_sample = jax.random.split(k_pool)
    pool_levels = env.task_space.sample_batch(k_levels, config.pool_capacity)
    pool = learner.teacher.init(pool_levels, batched_antagonist(antagonist, k_a2c, pool_levels, config.refresh_levels))
    pool, levels, slots = learner.teacher.sample(pool, k_sample, jnp.ones((config.num_agents,), bool))
    return learner.init(k_learner, meta_params, levels, pool=pool, slots=slots)


def refresh_pool(learner: MetaGradient, env: GridWorld, config: MetaGradientRunConfig, antagonist: Any,
                 state: MetaGradientState) -> MetaGradientState:
    """New generator levels (with their A2C return for GROOVE) replace the lowest-scored free slots."""
    if learner.teacher is None:
        return state
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed + 7919), int(state.step))
    k_levels, k_a2c = jax.random.split(key)
    levels = env.task_space.sample_batch(k_levels, config.refresh_levels)
    in_use = slots_in_use(state.slots, config.pool_capacity)
    return state.replace(pool=learner.teacher.refresh(state.pool, levels, antagonist(k_a2c, levels), in_use))


def make_chunk(learner: MetaGradient, length: int):
    """Jitted ``state -> (state, metrics averaged over the chunk)``."""

    def chunk(state):
        state, metrics = jax.lax.scan(lambda s, _: learner.step(s), state, None, length=length)
        summary = jax.tree.map(jnp.mean, metrics)
        summary["finished"] = jnp.sum(metrics["finished"])
        summary["meta_loss_last"] = metrics["meta_loss"][-1]
        if state.pool is not None:
            played = state.pool.scores < UNPLAYED
            summary["pool_played"] = jnp.mean(played.astype(jnp.float32))
            summary["pool_score_mean"] = jnp.sum(jnp.where(played, state.pool.scores, 0.0)) / jnp.maximum(
                jnp.sum(played), 1)
        return state, summary

    return jax.jit(chunk)


_PROGRAMS: dict[str, tuple] = {}
_NOT_IN_PROGRAM = ("seed", "meta_steps", "time_limit_s")


def programs(config: MetaGradientRunConfig) -> tuple[MetaGradient, GridWorld, Any, Any]:
    """``(learner, env, jitted chunk, jitted antagonist)``, shared by runs that differ only in seed or length
    (a resumed or repeated run in one process compiles nothing again)."""
    fields = {k: v for k, v in dataclasses.asdict(config).items() if k not in _NOT_IN_PROGRAM}
    key = json.dumps(fields, sort_keys=True, default=str)
    if key not in _PROGRAMS:
        learner, env = build_learner(config)
        _PROGRAMS[key] = (learner, env, make_chunk(learner, config.chunk), antagonist_returns(learner, config))
    return _PROGRAMS[key]


def describe_chunk(record: dict) -> str:
    """One progress line per chunk."""
    return (f"step {record['meta_step']:5d}  meta_loss {record['meta_loss']:+.4f}  "
            f"train_return {record['train_return']:+.3f}  entropy {record['policy_entropy']:.3f}  "
            f"{record['seconds']:.1f}s")


def meta_train(config: MetaGradientRunConfig, run_dir: str | Path, *, resume: bool = False,
               report: Callable[[dict], None] | None = None, extra: dict | None = None) -> dict:
    """Meta-train (or resume), then save ``learned_rule.npz`` with ``extra`` in its header; returns a summary."""
    run_dir = Path(run_dir)
    learner, env, chunk, antagonist = programs(config)
    result = run_gradient_loop(
        chunk, initial_state(learner, env, config, antagonist), run_dir, config.meta_steps,
        steps_done=lambda state: int(state.step),
        after_chunk=lambda state: refresh_pool(learner, env, config, antagonist, state),
        resume=resume, time_limit_s=config.time_limit_s, report=report,
    )
    steps = int(result.state.step)
    rule_extra = {"path": "meta_gradient", "level": config.level, "lifetime": config.agent_lifetime,
                  "lifetime_min": config.lifetime_min, "meta_steps": steps, "num_agents": config.num_agents,
                  "inner_updates": config.inner_updates, "meta_lr": config.meta_lr, "seed": config.seed,
                  "teacher": config.teacher, "objective": "ta_lpg" if config.lifetime_min is not None else "lpg",
                  **(extra or {})}
    artifact = save_rule(run_dir / ARTIFACT, learner.rule, learner.agent_config, result.state.meta_params, rule_extra)
    return {"run_dir": str(run_dir), "artifact": str(artifact), "meta_steps": steps,
            "wall_seconds": result.wall_seconds, "stopped_by_time_limit": result.stopped_by_time_limit}
