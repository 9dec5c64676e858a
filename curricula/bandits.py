"""Bandit algorithms over K arms as pure (state-pytree) objects.

Interface (all jittable):

* ``init(num_arms) -> state``
* ``probabilities(state) -> p[K]``: the distribution one draw follows
  (Thompson sampling has no closed form: a fixed-key Monte Carlo estimate).
* ``sample_arms(state, key, n) -> arms[n]``
* ``update(state, counts[K], rewards[K], played[K]) -> state``

**Batched rounds.** The teacher samples ``n`` tasks per round and reports
feedback per arm: ``counts[j]`` plays of arm ``j`` in the round and
``rewards[j]`` their reward signal (``played[j]`` = the arm has a valid
reward). With one play per round every rule below reduces to its textbook
form; with ``n`` plays, importance-weighted rules use the unbiased estimate
``x̂_j = counts_j r_j / (n p_j)`` of ``r_j`` (``n = sum counts``), and
count-based rules count plays.

Sources: Exp3 / Exp3.S: Auer et al., *The Nonstochastic Multiarmed Bandit
Problem* (2002). Graves' Exp3.S: *Automated Curriculum Learning for Neural
Networks* (2017), checked against espnet/espnet's ``EXP3SCurriculumGenerator``
(same update; it uses eps 0.05, beta 0). UCB1: Auer et al. (2002).
D-UCB / SW-UCB: Garivier & Moulines, *On Upper-Confidence Bound Policies for
Switching Bandit Problems* (2011) (padding ``2B sqrt(ξ log n_t / N_i)`` and
``B sqrt(ξ log min(t, τ) / N_i)``, ξ > 1/2). Thompson sampling with a
Gaussian posterior on discounted statistics (docs/algorithms.md §5.4).
ε-greedy and Boltzmann over TD(0)/mean values (TSCL: Matiisen et al.;
SEC's ``Q ← α r + (1-α) Q``, ``p ∝ exp(Q/τ)``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

_MC_DRAWS = 4096


def _argmax_uniform(index: jax.Array) -> jax.Array:
    """Uniform distribution over the maximisers of ``index`` (ties within 1e-6)."""
    best = jnp.max(index)
    is_best = index >= best - 1e-6  # with best = inf: exactly the unplayed arms
    return is_best / jnp.sum(is_best)


class Bandit:
    """Shared sampling: a categorical draw from ``probabilities``."""

    def sample_arms(self, state, key: jax.Array, n: int) -> jax.Array:
        p = self.probabilities(state)
        return jax.random.choice(key, p.shape[0], (n,), p=p).astype(jnp.int32)


# --- adversarial ---------------------------------------------------------------
@struct.dataclass
class LogWeightState:
    log_w: jax.Array  # [K]
    t: jax.Array  # [] rounds done


class Exp3(Bandit):
    """``p = (1-γ) w/Σw + γ/K``; ``w_j ← w_j exp(γ x̂_j / K)`` (Auer et al. 2002)."""

    def __init__(self, gamma: float = 0.1):
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"Exp3 gamma must lie in (0, 1], got {gamma}")
        self.gamma = gamma

    def init(self, num_arms: int) -> LogWeightState:
        return LogWeightState(jnp.zeros(num_arms, jnp.float32), jnp.zeros((), jnp.int32))

    def probabilities(self, state: LogWeightState) -> jax.Array:
        k = state.log_w.shape[0]
        return (1 - self.gamma) * jax.nn.softmax(state.log_w) + self.gamma / k

    def _estimates(self, state, counts, rewards, played):
        p = self.probabilities(state)
        n = jnp.maximum(jnp.sum(counts), 1.0)
        return jnp.where(played, counts * rewards / (n * p), 0.0)

    def update(self, state: LogWeightState, counts, rewards, played) -> LogWeightState:
        k = state.log_w.shape[0]
        log_w = state.log_w + self.gamma * self._estimates(state, counts, rewards, played) / k
        return LogWeightState(log_w - jnp.max(log_w), state.t + 1)


class Exp3S(Exp3):
    """Exp3.S of Auer et al.: Exp3 plus a fixed share ``(e α / K) Σ_i w_i`` to track a moving best arm."""

    def __init__(self, gamma: float = 0.1, alpha: float = 0.01):
        super().__init__(gamma)
        if alpha < 0:
            raise ValueError(f"Exp3S alpha must be >= 0, got {alpha}")
        self.alpha = alpha

    def update(self, state: LogWeightState, counts, rewards, played) -> LogWeightState:
        k = state.log_w.shape[0]
        grown = state.log_w + self.gamma * self._estimates(state, counts, rewards, played) / k
        share = jnp.log(jnp.e * self.alpha / k) + jax.nn.logsumexp(state.log_w)
        log_w = jnp.logaddexp(grown, share) if self.alpha > 0 else grown
        return LogWeightState(log_w - jnp.max(log_w), state.t + 1)


class GravesExp3S(Bandit):
    """Exp3.S as in Graves et al. (2017).

    ``π = (1-ε) softmax(w) + ε/K``; ``r̃_i = (x̂_i + β) / π_i`` with
    ``x̂_i = counts_i r_i / n`` (``r 1[i=a]`` for one play);
    ``w_i ← log[(1-α_t) e^{w_i + η r̃_i} + α_t/(K-1) Σ_{j≠i} e^{w_j + η r̃_j}]``.
    The paper's ``α_t = 1/t`` would, at ``t = 1``, replace every weight by the
    mean of the others; we count ``t`` from 2 (``α_t = 1/(t+1)``, t = rounds
    done before this one plus one). Paper defaults η = 1e-3, ε = 0.05, β = 0
    with rewards rescaled to [-1, 1] (use ``reward_scaling="quantile"``).
    """

    def __init__(self, eta: float = 1e-3, epsilon: float = 0.05, beta: float = 0.0):
        if not 0.0 <= epsilon <= 1.0 or eta <= 0:
            raise ValueError(f"GravesExp3S needs eta > 0 and epsilon in [0, 1], got {eta}, {epsilon}")
        self.eta, self.epsilon, self.beta = eta, epsilon, beta

    def init(self, num_arms: int) -> LogWeightState:
        if num_arms < 2:
            raise ValueError("GravesExp3S needs at least 2 arms")
        return LogWeightState(jnp.zeros(num_arms, jnp.float32), jnp.zeros((), jnp.int32))

    def probabilities(self, state: LogWeightState) -> jax.Array:
        k = state.log_w.shape[0]
        return (1 - self.epsilon) * jax.nn.softmax(state.log_w) + self.epsilon / k

    def update(self, state: LogWeightState, counts, rewards, played) -> LogWeightState:
        k = state.log_w.shape[0]
        pi = self.probabilities(state)
        n = jnp.maximum(jnp.sum(counts), 1.0)
        r_tilde = (jnp.where(played, counts * rewards / n, 0.0) + self.beta) / pi
        a = state.log_w + self.eta * r_tilde
        alpha = 1.0 / (state.t + 2.0)
        total = jax.nn.logsumexp(a)
        # log Σ_{j≠i} e^{a_j}, stable: log(e^total - e^{a_i})
        others = total + jnp.log1p(-jnp.minimum(jnp.exp(a - total), 1.0 - 1e-7))
        log_w = jnp.logaddexp(jnp.log1p(-alpha) + a, jnp.log(alpha / (k - 1)) + others)
        return LogWeightState(log_w - jnp.max(log_w), state.t + 1)


# --- UCB family --------------------------------------------------------------
@struct.dataclass
class CountState:
    counts: jax.Array  # [K] (possibly discounted) plays
    sums: jax.Array  # [K] (possibly discounted) reward sums


class UCB1(Bandit):
    """``argmax x̄_i + c sqrt(2 ln t / n_i)``; unplayed arms first (ties split uniformly)."""

    def __init__(self, exploration: float = 1.0):
        self.exploration = exploration

    def init(self, num_arms: int) -> CountState:
        return CountState(jnp.zeros(num_arms, jnp.float32), jnp.zeros(num_arms, jnp.float32))

    def index(self, state: CountState) -> jax.Array:
        n = state.counts
        t = jnp.maximum(jnp.sum(n), 1.0)
        safe = jnp.maximum(n, 1e-12)
        bonus = self.exploration * jnp.sqrt(2.0 * jnp.log(t) / safe)
        return jnp.where(n > 0, state.sums / safe + bonus, jnp.inf)

    def probabilities(self, state: CountState) -> jax.Array:
        return _argmax_uniform(self.index(state))

    def update(self, state: CountState, counts, rewards, played) -> CountState:
        c = jnp.where(played, counts, 0.0)
        return CountState(state.counts + c, state.sums + c * rewards)


class DiscountedUCB(UCB1):
    """D-UCB: discounted counts/sums (factor γ per round), padding ``2B sqrt(ξ log n_t / N_i)``."""

    def __init__(self, gamma: float = 0.99, bound: float = 1.0, xi: float = 0.6):
        if not 0.0 < gamma <= 1.0 or xi <= 0.5:
            raise ValueError(f"DiscountedUCB needs gamma in (0, 1] and xi > 1/2, got {gamma}, {xi}")
        self.gamma, self.bound, self.xi = gamma, bound, xi

    def index(self, state: CountState) -> jax.Array:
        n = state.counts
        total = jnp.maximum(jnp.sum(n), 1.0)
        safe = jnp.maximum(n, 1e-12)
        pad = 2.0 * self.bound * jnp.sqrt(self.xi * jnp.log(total) / safe)
        return jnp.where(n > 1e-6, state.sums / safe + pad, jnp.inf)

    def update(self, state: CountState, counts, rewards, played) -> CountState:
        c = jnp.where(played, counts, 0.0)
        return CountState(self.gamma * state.counts + c, self.gamma * state.sums + c * rewards)


@struct.dataclass
class WindowState:
    counts: jax.Array  # [window, K] plays per round
    sums: jax.Array  # [window, K] reward sums per round
    cursor: jax.Array  # [] next row to overwrite


class SlidingWindowUCB(Bandit):
    """SW-UCB: statistics of the last ``window`` rounds, padding ``B sqrt(ξ log n / N_i)``.

    ``n`` = plays inside the window (= ``min(t, τ)`` with one play per round).
    """

    def __init__(self, window: int = 50, bound: float = 1.0, xi: float = 0.6):
        if window < 1 or xi <= 0.5:
            raise ValueError(f"SlidingWindowUCB needs window >= 1 and xi > 1/2, got {window}, {xi}")
        self.window, self.bound, self.xi = window, bound, xi

    def init(self, num_arms: int) -> WindowState:
        zeros = jnp.zeros((self.window, num_arms), jnp.float32)
        return WindowState(zeros, zeros, jnp.zeros((), jnp.int32))

    def index(self, state: WindowState) -> jax.Array:
        n = jnp.sum(state.counts, axis=0)
        s = jnp.sum(state.sums, axis=0)
        total = jnp.maximum(jnp.sum(n), 1.0)
        safe = jnp.maximum(n, 1e-12)
        return jnp.where(n > 0, s / safe + self.bound * jnp.sqrt(self.xi * jnp.log(total) / safe), jnp.inf)

    def probabilities(self, state: WindowState) -> jax.Array:
        return _argmax_uniform(self.index(state))

    def update(self, state: WindowState, counts, rewards, played) -> WindowState:
        c = jnp.where(played, counts, 0.0)
        return WindowState(
            state.counts.at[state.cursor].set(c),
            state.sums.at[state.cursor].set(c * rewards),
            (state.cursor + 1) % self.window,
        )


# --- Bayesian ---------------------------------------------------------------------
class ThompsonSampling(Bandit):
    """Gaussian Thompson sampling on discounted statistics (non-stationary progress signals).

    Posterior of arm ``i`` (prior N(0, σ²/n0), known noise σ):
    ``N(S_i / (N_i + n0), σ² / (N_i + n0))`` with ``N ← γN + c``,
    ``S ← γS + c r``. Each sampled task draws its own posterior sample.
    """

    def __init__(self, noise_std: float = 0.1, gamma: float = 1.0, prior_count: float = 1.0):
        if noise_std <= 0 or not 0.0 < gamma <= 1.0 or prior_count <= 0:
            raise ValueError("ThompsonSampling needs noise_std > 0, gamma in (0, 1], prior_count > 0")
        self.noise_std, self.gamma, self.prior_count = noise_std, gamma, prior_count

    def init(self, num_arms: int) -> CountState:
        return CountState(jnp.zeros(num_arms, jnp.float32), jnp.zeros(num_arms, jnp.float32))

    def posterior(self, state: CountState) -> tuple[jax.Array, jax.Array]:
        n = state.counts + self.prior_count
        return state.sums / n, self.noise_std / jnp.sqrt(n)

    def sample_arms(self, state: CountState, key: jax.Array, n: int) -> jax.Array:
        mean, std = self.posterior(state)
        draws = mean + std * jax.random.normal(key, (n, mean.shape[0]))
        return jnp.argmax(draws, axis=1).astype(jnp.int32)

    def probabilities(self, state: CountState) -> jax.Array:
        arms = self.sample_arms(state, jax.random.PRNGKey(0), _MC_DRAWS)
        return jnp.bincount(arms, length=state.counts.shape[0]) / _MC_DRAWS

    def update(self, state: CountState, counts, rewards, played) -> CountState:
        c = jnp.where(played, counts, 0.0)
        return CountState(self.gamma * state.counts + c, self.gamma * state.sums + c * rewards)


# --- value-based --------------------------------------------------------------------
@struct.dataclass
class ValueState:
    q: jax.Array  # [K] value estimate
    counts: jax.Array  # [K] plays


class _ValueBandit(Bandit):
    def __init__(self, step_size: float | None, initial_value: float):
        if step_size is not None and not 0.0 < step_size <= 1.0:
            raise ValueError(f"step_size must lie in (0, 1] or be None (sample mean), got {step_size}")
        self.step_size, self.initial_value = step_size, initial_value

    def init(self, num_arms: int) -> ValueState:
        return ValueState(jnp.full(num_arms, self.initial_value, jnp.float32), jnp.zeros(num_arms, jnp.float32))

    def update(self, state: ValueState, counts, rewards, played) -> ValueState:
        c = jnp.where(played, counts, 0.0)
        total = state.counts + c
        # sample mean weights the round by its plays; TD(0) moves once per round
        step = c / jnp.maximum(total, 1.0) if self.step_size is None else self.step_size
        q = jnp.where(played, state.q + step * (rewards - state.q), state.q)
        return ValueState(q, total)


class EpsilonGreedy(_ValueBandit):
    """``p = ε/K + (1-ε)·uniform(argmax Q)``; Q = sample mean or TD(0) with ``step_size``."""

    def __init__(self, epsilon: float = 0.1, step_size: float | None = None, initial_value: float = 0.0):
        super().__init__(step_size, initial_value)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
        self.epsilon = epsilon

    def probabilities(self, state: ValueState) -> jax.Array:
        k = state.q.shape[0]
        return self.epsilon / k + (1 - self.epsilon) * _argmax_uniform(state.q)


class Boltzmann(_ValueBandit):
    """``p ∝ exp(Q / τ)`` with TD(0) values (SEC: ``Q ← α r + (1-α) Q``)."""

    def __init__(self, temperature: float = 1.0, step_size: float | None = 0.5, initial_value: float = 0.0):
        super().__init__(step_size, initial_value)
        if temperature <= 0:
            raise ValueError(f"Boltzmann temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def probabilities(self, state: ValueState) -> jax.Array:
        return jax.nn.softmax(state.q / self.temperature)


ALGORITHMS = {
    "exp3": Exp3,
    "exp3s": Exp3S,
    "graves_exp3s": GravesExp3S,
    "ucb1": UCB1,
    "discounted_ucb": DiscountedUCB,
    "sliding_window_ucb": SlidingWindowUCB,
    "thompson": ThompsonSampling,
    "epsilon_greedy": EpsilonGreedy,
    "boltzmann": Boltzmann,
}
