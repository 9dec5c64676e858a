"""Level curricula for the meta-gradient path: GROOVE (algorithmic regret) and PLR (positive value loss).

The meta-gradient learner (:mod:`metarl.lpg.meta_gradient`) replaces a few
finished agents every step, so its teacher works per agent rather than per
ES generation. :class:`LevelPool` keeps a PLR buffer (``curricula.level_buffer``)
of levels:

* a restarted agent draws its level from the buffer with the PLR replay
  distribution ``P = (1 - rho) · rank(score)^(-1/T) + rho · staleness``;
* when the agent finishes its lifetime, the level's score is set from it:
  ``"regret"``: GROOVE's algorithmic regret ``AR = G_A2C - G_LPG`` with the
  A2C return cached in the buffer's ``max_returns`` (computed once, when the
  level entered the pool) and ``G_LPG`` the agent's mean return in its last
  rollout; ``"pvl"``: the positive value loss ``mean_t max(GAE_t, 0)`` of the
  agent's last rollout under the meta-objective's critic (PLR);
* :meth:`LevelPool.refresh` (called by the driver between jitted chunks)
  swaps in new generator levels for the lowest-scored ones; a new level is
  scored ``+inf`` until an agent has finished on it, so every new level is
  tried before it can be dropped.

The per-agent ``slots`` live in the learner state; everything is pure and jittable.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from curricula import level_buffer as lb

SCORES = ("regret", "pvl")
UNPLAYED = 1e9  # score of a level no agent has finished on yet: sampled first


@dataclasses.dataclass(frozen=True)
class LevelPool:
    capacity: int = 64
    score: str = "regret"  # "regret" (GROOVE) | "pvl" (PLR)
    staleness_coef: float = 0.3
    temperature: float = 1.0

    def __post_init__(self):
        if self.score not in SCORES:
            raise ValueError(f"LevelPool.score must be one of {SCORES}, got {self.score!r}")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int) or self.capacity < 1:
            raise ValueError(f"LevelPool.capacity must be a positive int, got {self.capacity!r}")
        if not 0.0 <= self.staleness_coef <= 1.0 or not self.temperature > 0:
            raise ValueError("LevelPool.staleness_coef must lie in [0, 1] and temperature be > 0")

    def init(self, levels: Any, antagonist: jax.Array) -> lb.LevelBuffer:
        """A full pool: ``levels`` batched ``[capacity]``, ``antagonist`` their A2C returns (ignored for pvl)."""
        n = jax.tree.leaves(levels)[0].shape[0]
        if n != self.capacity:
            raise ValueError(f"LevelPool.init needs {self.capacity} levels, got {n}")
        return lb.LevelBuffer(
            levels=levels,
            scores=jnp.full((n,), UNPLAYED, jnp.float32),
            timestamps=jnp.zeros((n,), jnp.int32),
            filled=jnp.ones((n,), bool),
            max_returns=jnp.asarray(antagonist, jnp.float32),
            episode_count=jnp.zeros((), jnp.int32),
        )

    def weights(self, pool: lb.LevelBuffer) -> jax.Array:
        return lb.replay_weights(pool, "rank", self.temperature, self.staleness_coef)

    def sample(self, pool: lb.LevelBuffer, key: jax.Array, take: jax.Array) -> tuple[lb.LevelBuffer, Any, jax.Array]:
        """Slots and levels for every agent (``[n]``); only agents with ``take`` count as sampled (staleness)."""
        n = take.shape[0]
        slots = jax.random.choice(key, self.capacity, (n,), p=self.weights(pool))
        clock = pool.episode_count + 1
        stamp = jnp.where(take, slots, self.capacity)  # out of range: dropped
        pool = pool.replace(timestamps=pool.timestamps.at[stamp].set(clock, mode="drop"), episode_count=clock)
        levels = jax.tree.map(lambda x: x[slots], pool.levels)
        return pool, levels, slots

    def level_scores(self, pool: lb.LevelBuffer, slots: jax.Array, agent_return: jax.Array,
                     pvl: jax.Array) -> jax.Array:
        if self.score == "pvl":
            return jnp.asarray(pvl, jnp.float32)
        return pool.max_returns[slots] - jnp.asarray(agent_return, jnp.float32)  # algorithmic regret

    def report(self, pool: lb.LevelBuffer, slots: jax.Array, finished: jax.Array, agent_return: jax.Array,
               pvl: jax.Array) -> lb.LevelBuffer:
        """Score the levels of the agents that ``finished`` (the last finisher on a slot wins)."""
        scores = self.level_scores(pool, slots, agent_return, pvl)
        target = jnp.where(finished, slots, self.capacity)
        return pool.replace(scores=pool.scores.at[target].set(scores, mode="drop"))

    def refresh(self, pool: lb.LevelBuffer, levels: Any, antagonist: jax.Array,
                in_use: jax.Array) -> lb.LevelBuffer:
        """Replace the lowest-scored slots no agent is on (``in_use [capacity]`` bool) by ``levels``."""
        m = jax.tree.leaves(levels)[0].shape[0]
        keyed = jnp.where(in_use, jnp.inf, pool.scores)
        slots = jnp.argsort(keyed, stable=True)[:m]
        # a slot still in use (pool too small for m free slots) keeps its level
        slots = jnp.where(in_use[slots], self.capacity, slots)
        put = lambda old, new: old.at[slots].set(new, mode="drop")  # noqa: E731
        return pool.replace(
            levels=jax.tree.map(put, pool.levels, levels),
            scores=put(pool.scores, jnp.full((m,), UNPLAYED, jnp.float32)),
            max_returns=put(pool.max_returns, jnp.asarray(antagonist, jnp.float32)),
            timestamps=put(pool.timestamps, jnp.full((m,), pool.episode_count, jnp.int32)),
        )


def slots_in_use(slots: jax.Array, capacity: int) -> jax.Array:
    """``[capacity]`` bool: slots some agent is currently training on."""
    return jnp.zeros((capacity,), bool).at[slots].set(True)
