"""GROOVE: a PLR level buffer scored by algorithmic regret, as a pure teacher.

Jackson et al., *Discovering General Reinforcement Learning Algorithms with
Adversarial Environment Design* (GROOVE; docs/algorithms.md §3.2, §3.3). The
learned update rule is meta-trained on levels where it trails a hand-designed
algorithm the most:

    AR(level) = G(A2C trained for the max lifetime) - G(agent trained by the learned rule)

* ``sample`` picks one branch for the whole batch (as ``curricula.plr``):
  **replay** (buffer at least ``min_fill_ratio`` full, then with probability
  ``replay_prob``) draws from the rank + staleness replay distribution;
  otherwise **new** levels come from the generator (the TaskSpace sampler).
* The antagonist (A2C) return ``G_A2C`` is computed **once**, when a level is
  new, by ``antagonist_fn(key, level) -> return``; it is stored in the
  buffer's per-slot ``max_returns`` field (for GROOVE that slot holds the
  reference return, not MaxMC's best return). A replay batch reads it back:
  the two branches sit in a ``lax.cond``, so replay batches run no antagonist
  at all (GROOVE's own code recomputes AR every step and calls this "very
  inefficient"). ``state.antagonist_evaluations`` counts the levels the
  antagonist has trained on.
* ``update(state, levels, feedback)`` takes ``feedback.returns`` = the
  learned-rule agent's return on each level, scores
  ``AR = antagonist - returns`` and writes it (replay: overwrite the slots'
  scores; new: offer the levels with their cached antagonist return).

AR can be negative, so prioritisation is by rank only (``h_i = rank^(-1/T)``).
The sampled batch size is static (``batch_size``): the state keeps the last
batch's slots and antagonist returns, and its shapes must not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from curricula import level_buffer as lb
from curricula.base import Feedback
from curricula.simple import TaskSpaceTeacher

NEW, REPLAY = 0, 1
AntagonistFn = Callable[[jax.Array, Any], jax.Array]


def algorithmic_regret(antagonist_returns: jax.Array, agent_returns: jax.Array) -> jax.Array:
    """``AR = G(antagonist) - G(learned-rule agent)``, elementwise (positive: the learned rule trails)."""
    return jnp.asarray(antagonist_returns, jnp.float32) - jnp.asarray(agent_returns, jnp.float32)


@struct.dataclass
class GROOVEState:
    buffer: lb.LevelBuffer  # scores = AR, max_returns = cached antagonist return
    branch: jax.Array  # [] int32: NEW / REPLAY of the last sample
    slots: jax.Array  # [batch_size] int32: replayed slots of the last sample (unused after NEW)
    antagonist: jax.Array  # [batch_size] float32: antagonist return on the last sampled levels
    antagonist_evaluations: jax.Array  # [] int32: levels the antagonist has been trained on so far
    key: jax.Array  # PRNG key for the antagonist's runs

    @property
    def last_was_replay(self) -> jax.Array:
        return self.branch == REPLAY


class GROOVE(TaskSpaceTeacher):
    """Algorithmic-regret PLR (see module docstring); defaults follow GROOVE's (capacity 4000, replay 0.5)."""

    def __init__(
        self,
        antagonist_fn: AntagonistFn,
        batch_size: int,
        capacity: int = 4000,
        replay_prob: float = 0.5,
        staleness_coef: float = 0.3,
        temperature: float = 1.0,
        min_fill_ratio: float = 0.0,
        duplicate_check: bool = False,
        generator: Callable[[jax.Array], Any] | None = None,
        task_space: Any = None,
    ):
        super().__init__(task_space)
        if batch_size < 1 or capacity < 1:
            raise ValueError(f"GROOVE batch_size and capacity must be >= 1, got {batch_size}, {capacity}")
        if not 0.0 <= replay_prob <= 1.0 or not 0.0 <= staleness_coef <= 1.0:
            raise ValueError("GROOVE replay_prob and staleness_coef must lie in [0, 1]")
        if not 0.0 <= min_fill_ratio <= 1.0:
            raise ValueError(f"GROOVE min_fill_ratio must lie in [0, 1], got {min_fill_ratio}")
        if temperature <= 0:
            raise ValueError(f"GROOVE temperature must be > 0, got {temperature}")
        self.antagonist_fn = antagonist_fn
        self.batch_size = batch_size
        self.capacity = capacity
        self.replay_prob = replay_prob
        self.staleness_coef = staleness_coef
        self.temperature = temperature
        self.min_fill_ratio = min_fill_ratio
        self.duplicate_check = duplicate_check
        self.generator = generator

    # --- protocol -------------------------------------------------------
    def init(self, key: jax.Array, task_space: Any = None) -> GROOVEState:
        self._set_task_space(task_space)
        key_template, key_state = jax.random.split(key)
        template = jax.tree.map(lambda x: x[0], self._generate(key_template, 1))
        return GROOVEState(
            buffer=lb.create(template, self.capacity),
            branch=jnp.array(NEW, jnp.int32),
            slots=jnp.zeros(self.batch_size, jnp.int32),
            antagonist=jnp.zeros(self.batch_size, jnp.float32),
            antagonist_evaluations=jnp.zeros((), jnp.int32),
            key=key_state,
        )

    def sample(self, state: GROOVEState, key: jax.Array, n: int) -> tuple[GROOVEState, Any]:
        if n != self.batch_size:
            raise ValueError(f"GROOVE was built for batches of {self.batch_size} levels, asked for {n}")
        key_new, key_replay, key_decide = jax.random.split(key, 3)
        antagonist_key, next_key = jax.random.split(state.key)
        new_levels = self._generate(key_new, n)
        replay_buffer, slots, replay_levels = lb.sample_replay(
            state.buffer, key_replay, n, "rank", self.temperature, self.staleness_coef
        )
        replay = self._decide_replay(state.buffer, key_decide)

        # Only the taken branch runs: replays reuse the cache, new levels train the antagonist.
        antagonist = jax.lax.cond(
            replay,
            lambda: replay_buffer.max_returns[slots],
            lambda: self._antagonist_returns(antagonist_key, new_levels),
        )
        choose = lambda a, b: jax.tree.map(lambda x, y: jnp.where(replay, x, y), a, b)  # noqa: E731
        new_state = GROOVEState(
            buffer=choose(replay_buffer, lb.advance(state.buffer, n)),
            branch=jnp.where(replay, REPLAY, NEW).astype(jnp.int32),
            slots=slots.astype(jnp.int32),
            antagonist=antagonist,
            antagonist_evaluations=state.antagonist_evaluations + jnp.where(replay, 0, n).astype(jnp.int32),
            key=next_key,
        )
        return new_state, choose(replay_levels, new_levels)

    def update(self, state: GROOVEState, tasks: Any, feedback: Feedback) -> GROOVEState:
        regret = algorithmic_regret(state.antagonist, feedback.returns)
        mask = jnp.asarray(feedback.mask, bool) & jnp.isfinite(regret)
        replayed = lb.update_scores(state.buffer, state.slots, regret, mask)
        offered, _ = lb.insert_batch(
            state.buffer, tasks, regret, mask, max_returns=state.antagonist, duplicate_check=self.duplicate_check
        )
        buffer = jax.tree.map(lambda a, b: jnp.where(state.branch == REPLAY, a, b), replayed, offered)
        return state.replace(buffer=buffer)

    # --- helpers ------------------------------------------------------------
    def regret(self, state: GROOVEState, agent_returns: jax.Array) -> jax.Array:
        """AR of the last sampled batch for these learned-rule returns."""
        return algorithmic_regret(state.antagonist, agent_returns)

    def replay_probabilities(self, state: GROOVEState) -> jax.Array:
        return lb.replay_weights(state.buffer, "rank", self.temperature, self.staleness_coef)

    def _antagonist_returns(self, key: jax.Array, levels: Any) -> jax.Array:
        keys = jax.random.split(key, self.batch_size)
        returns = jax.vmap(self.antagonist_fn)(keys, levels)
        return jnp.asarray(returns, jnp.float32).reshape(self.batch_size)

    def _generate(self, key: jax.Array, n: int) -> Any:
        if self.generator is None:
            return self.task_space.sample_batch(key, n)
        return jax.vmap(self.generator)(jax.random.split(key, n))

    def _decide_replay(self, buffer: lb.LevelBuffer, key: jax.Array) -> jax.Array:
        ready = (buffer.fill_ratio >= self.min_fill_ratio) & (buffer.size > 0)
        return ready & (jax.random.uniform(key) < self.replay_prob)
