"""Reward signals for bandit teachers, computed per arm from one round's feedback.

Interface: ``init(num_arms) -> state``;
``update(state, stats: ArmStats, t) -> (state, reward[K], valid[K])`` where
``valid[j]`` says arm ``j`` produced a usable reward this round (arms with no
feedback never do).

* :class:`AbsoluteLearningProgress`: ``|m_j(now) - m_j(previous visit)|``
  (TSCL "online" signal; the first visit only records ``m_j``).
* :class:`WindowedSlope`: least-squares slope of the arm's last ``window``
  ``(t, m)`` points, ``|slope|`` by default; fewer than 2 points gives the
  optimistic slope 1 (Matiisen et al., *Teacher-Student Curriculum
  Learning*, window teacher; defaults K = 10, abs = True).
* :class:`FastSlowProgress`: ``|rw(p_fast) - rw(p_slow)|`` with
  ``p_fast ← α p + (1-α) p_fast``, ``p_slow ← α p_fast + (1-α) p_slow``,
  ``rw(p) = p(1-θ) / (p + θ(1-2p))``, α = θ = 0.1 (Kanitscheider et al.,
  Minecraft curriculum, as in RyanNavillus/Syllabus; ``p`` must be in [0, 1],
  success rate by default).
* :class:`MeanAbsAdvantage`: the arm's mean ``Feedback.scores`` (mean |GAE|
  per level) this round (SEC; DUMP).

``metric`` picks what ``m`` is: ``"return"`` (normalised by the teacher if
it has a return range), ``"success"`` or ``"score"``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

METRICS = ("return", "success", "score")


@struct.dataclass
class ArmStats:
    counts: jax.Array  # [K] feedback entries per arm this round
    returns: jax.Array  # [K] mean (normalised) return
    success: jax.Array  # [K] mean success
    scores: jax.Array  # [K] mean value-based score

    def metric(self, name: str) -> jax.Array:
        return {"return": self.returns, "success": self.success, "score": self.scores}[name]


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric


@struct.dataclass
class LastValueState:
    last: jax.Array  # [K]
    seen: jax.Array  # [K] bool


class AbsoluteLearningProgress:
    def __init__(self, metric: str = "return"):
        self.metric = _check_metric(metric)

    def init(self, num_arms: int) -> LastValueState:
        return LastValueState(jnp.zeros(num_arms, jnp.float32), jnp.zeros(num_arms, bool))

    def update(self, state: LastValueState, stats: ArmStats, t: jax.Array):
        played = stats.counts > 0
        m = stats.metric(self.metric)
        reward = jnp.abs(m - state.last)
        valid = played & state.seen
        return LastValueState(jnp.where(played, m, state.last), state.seen | played), reward, valid


@struct.dataclass
class WindowState:
    times: jax.Array  # [K, W]
    values: jax.Array  # [K, W]
    filled: jax.Array  # [K, W] bool
    cursor: jax.Array  # [K] int32


class WindowedSlope:
    def __init__(self, window: int = 10, absolute: bool = True, metric: str = "return"):
        if window < 2:
            raise ValueError(f"WindowedSlope window must be >= 2, got {window}")
        self.window, self.absolute, self.metric = window, absolute, _check_metric(metric)

    def init(self, num_arms: int) -> WindowState:
        zeros = jnp.zeros((num_arms, self.window), jnp.float32)
        return WindowState(zeros, zeros, jnp.zeros((num_arms, self.window), bool), jnp.zeros(num_arms, jnp.int32))

    def update(self, state: WindowState, stats: ArmStats, t: jax.Array):
        played = stats.counts > 0
        arms = jnp.arange(played.shape[0])
        col = state.cursor

        def write(buf, value):
            return buf.at[arms, col].set(jnp.where(played, value, buf[arms, col]))

        new = WindowState(
            write(state.times, jnp.full(played.shape, t, jnp.float32)),
            write(state.values, stats.metric(self.metric)),
            write(state.filled, True),
            jnp.where(played, (col + 1) % self.window, col),
        )
        slope = self.slope(new)
        return new, jnp.abs(slope) if self.absolute else slope, played

    @staticmethod
    def slope(state: WindowState) -> jax.Array:
        """Least-squares slope per arm over its filled points; 1 with fewer than 2."""
        w = state.filled.astype(jnp.float32)
        n = jnp.sum(w, axis=1)
        safe_n = jnp.maximum(n, 1.0)
        t_mean = jnp.sum(w * state.times, axis=1) / safe_n
        v_mean = jnp.sum(w * state.values, axis=1) / safe_n
        dt = (state.times - t_mean[:, None]) * w
        cov = jnp.sum(dt * (state.values - v_mean[:, None]), axis=1)
        var = jnp.sum(dt * dt, axis=1)
        return jnp.where((n >= 2) & (var > 0), cov / jnp.where(var > 0, var, 1.0), 1.0)


@struct.dataclass
class FastSlowState:
    fast: jax.Array  # [K]
    slow: jax.Array  # [K]


class FastSlowProgress:
    def __init__(self, alpha: float = 0.1, theta: float = 0.1, metric: str = "success"):
        if not 0.0 < alpha <= 1.0 or not 0.0 <= theta < 0.5:
            raise ValueError(f"FastSlowProgress needs alpha in (0, 1] and theta in [0, 0.5), got {alpha}, {theta}")
        self.alpha, self.theta, self.metric = alpha, theta, _check_metric(metric)

    def init(self, num_arms: int) -> FastSlowState:
        zeros = jnp.zeros(num_arms, jnp.float32)
        return FastSlowState(zeros, zeros)

    def reweight(self, p: jax.Array) -> jax.Array:
        """Stretches progress near 0 and 1 (Syllabus' ``reweight``)."""
        denom = p + self.theta * (1.0 - 2.0 * p)
        return jnp.where(denom > 0, p * (1.0 - self.theta) / jnp.where(denom > 0, denom, 1.0), 0.0)

    def update(self, state: FastSlowState, stats: ArmStats, t: jax.Array):
        played = stats.counts > 0
        p = jnp.clip(stats.metric(self.metric), 0.0, 1.0)
        fast = jnp.where(played, self.alpha * p + (1 - self.alpha) * state.fast, state.fast)
        slow = jnp.where(played, self.alpha * fast + (1 - self.alpha) * state.slow, state.slow)
        reward = jnp.abs(self.reweight(fast) - self.reweight(slow))
        return FastSlowState(fast, slow), reward, played


@struct.dataclass
class NoState:
    pass


class MeanAbsAdvantage:
    def init(self, num_arms: int) -> NoState:
        return NoState()

    def update(self, state: NoState, stats: ArmStats, t: jax.Array):
        return state, stats.scores, stats.counts > 0


SIGNALS = {
    "alp": AbsoluteLearningProgress,
    "window_slope": WindowedSlope,
    "fast_slow": FastSlowProgress,
    "mean_abs_advantage": MeanAbsAdvantage,
}
