"""One generic bandit teacher = (arms, bandit algorithm, reward signal).

Every combination works: arms are a discrete task set or bins of a
continuous TaskSpace (``curricula.arms``), the algorithm is any of
``curricula.bandits`` and the reward signal any of ``curricula.progress``.

One ``update`` is one bandit round: feedback entries (flat, masked) are
credited to arms by ``arms.arm_of(tasks)``, averaged per arm, turned into a
reward by the signal, optionally rescaled, and given to the algorithm.

``reward_scaling="quantile"`` is Graves et al.'s rescaling: with ``q_lo``,
``q_hi`` the 20th/80th percentiles of the raw rewards seen so far (a ring
buffer of ``history`` rounds × arms), rewards map to -1 below ``q_lo``, +1
above ``q_hi`` and linearly in between (0 while the history is empty or
flat). ``return_range=(lo, hi)`` normalises returns to [0, 1] before the
signal sees them (ALP-style).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from curricula.base import Feedback
from curricula.progress import ArmStats

SCALINGS = ("none", "quantile")


@struct.dataclass
class BanditState:
    bandit: Any
    signal: Any
    history: jax.Array  # [history] raw rewards (NaN = empty), for quantile scaling
    cursor: jax.Array  # [] next history slot
    t: jax.Array  # [] rounds done


class BanditTeacher:
    def __init__(
        self,
        arms: Any,
        algorithm: Any,
        signal: Any,
        reward_scaling: str = "none",
        history: int = 1000,
        return_range: tuple[float, float] | None = None,
    ):
        if reward_scaling not in SCALINGS:
            raise ValueError(f"reward_scaling must be one of {SCALINGS}, got {reward_scaling!r}")
        if return_range is not None and not return_range[1] > return_range[0]:
            raise ValueError(f"return_range must be (low, high) with high > low, got {return_range}")
        self.arms, self.algorithm, self.signal = arms, algorithm, signal
        self.reward_scaling, self.history_size, self.return_range = reward_scaling, history, return_range

    @property
    def num_arms(self) -> int:
        return self.arms.num_arms

    def init(self, key: jax.Array, task_space: Any = None) -> BanditState:
        if task_space is not None:
            self.arms.bind(task_space)
        k = self.num_arms
        return BanditState(
            self.algorithm.init(k),
            self.signal.init(k),
            jnp.full((self.history_size,), jnp.nan, jnp.float32),
            jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32),
        )

    def probabilities(self, state: BanditState) -> jax.Array:
        return self.algorithm.probabilities(state.bandit)

    def sample(self, state: BanditState, key: jax.Array, n: int) -> tuple[BanditState, Any]:
        key_arm, key_task = jax.random.split(key)
        arms = self.algorithm.sample_arms(state.bandit, key_arm, n)
        return state, self.arms.tasks_for(key_task, arms)

    def arm_stats(self, tasks: Any, feedback: Feedback) -> ArmStats:
        k = self.num_arms
        arm = self.arms.arm_of(tasks)
        w = jnp.asarray(feedback.mask, jnp.float32)
        counts = jax.ops.segment_sum(w, arm, num_segments=k)
        returns = jnp.asarray(feedback.returns, jnp.float32)
        if self.return_range is not None:
            lo, hi = self.return_range
            returns = jnp.clip((returns - lo) / (hi - lo), 0.0, 1.0)

        def mean(x):
            x = jnp.where(w > 0, jnp.asarray(x, jnp.float32), 0.0)  # masked entries may hold junk (NaN, -inf)
            return jax.ops.segment_sum(w * x, arm, num_segments=k) / jnp.maximum(counts, 1.0)

        return ArmStats(counts, mean(returns), mean(feedback.success), mean(feedback.scores))

    def update(self, state: BanditState, tasks: Any, feedback: Feedback) -> BanditState:
        stats = self.arm_stats(tasks, feedback)
        signal_state, reward, valid = self.signal.update(state.signal, stats, state.t.astype(jnp.float32))
        played = valid & (stats.counts > 0)
        history, cursor = state.history, state.cursor
        if self.reward_scaling == "quantile":
            scaled = self._quantile_scale(reward, history)
            history, cursor = self._remember(history, cursor, reward, played)
            reward = scaled
        bandit = self.algorithm.update(state.bandit, stats.counts, reward, played)
        return BanditState(bandit, signal_state, history, cursor, state.t + 1)

    @staticmethod
    def _quantile_scale(reward: jax.Array, history: jax.Array) -> jax.Array:
        have = jnp.any(~jnp.isnan(history))
        filled = jnp.where(have, history, 0.0)
        q_lo = jnp.nanquantile(filled, 0.2)
        q_hi = jnp.nanquantile(filled, 0.8)
        span = q_hi - q_lo
        inside = 2.0 * (reward - q_lo) / jnp.where(span > 0, span, 1.0) - 1.0
        scaled = jnp.where(reward < q_lo, -1.0, jnp.where(reward > q_hi, 1.0, jnp.where(span > 0, inside, 0.0)))
        return jnp.where(have, scaled, 0.0)

    def _remember(self, history, cursor, reward, played):
        """Append the played arms' raw rewards to the ring buffer, in arm order."""
        order = jnp.cumsum(played) - 1
        slots = jnp.where(played, (cursor + order) % self.history_size, self.history_size)
        history = history.at[slots].set(reward, mode="drop")
        return history, (cursor + jnp.sum(played)) % self.history_size
