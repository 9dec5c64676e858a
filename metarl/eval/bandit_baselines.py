"""Classical baselines for in-context (RL²) k-armed Bernoulli bandits, acting on env arms.

Policies (``POLICIES``), all on Bernoulli arms (``envs.bandit.BanditParams.arm_means``):

* ``"random"``: a uniform arm each pull (expected total ``n * mean(mu)``; ``n / 2`` on
  ``U[0, 1]`` means).
* ``"oracle"``: always the best arm (knows ``mu``).
* ``"ucb1"``: Auer et al. (2002): each arm once, then ``argmax mean_i + sqrt(2 ln t / n_i)``
  (``t`` pulls so far).
* ``"thompson"``: Thompson sampling with independent ``Beta(1, 1)`` priors: draw
  ``theta_i ~ Beta(1 + s_i, 1 + f_i)``, pull ``argmax theta``.
* ``"gittins"``: the Gittins index policy for Bernoulli arms with ``Beta(1, 1)`` priors and
  discount ``gamma`` (the Bayes-optimal policy of the *discounted infinite-horizon*
  problem, used here as the standard index heuristic for the finite horizon ``n``; it is
  not the finite-horizon Bayes-optimal policy). Indices come from
  :func:`gittins_indices` (calibration by retirement, below).

Ties are broken uniformly at random (e.g. UCB1's and Gittins' first pulls).

**Gittins indices** (:func:`gittins_indices`). For an arm with posterior ``Beta(a, b)``
the index is the retirement reward ``lambda`` at which retiring forever (``lambda / (1 -
gamma)``) and pulling once more are equally good in the one-armed calibration problem
``V(a, b) = max(lambda / (1 - gamma), p (1 + gamma V(a+1, b)) + (1 - p) gamma V(a, b+1))``,
``p = a / (a + b)``. The programme runs backward over ``a + b`` down from a truncation
level ``a + b = depth_total`` (where ``V = max(lambda, p) / (1 - gamma)``: no further
learning), for a grid of ``lambda`` values at once; each state's index is the root of
``continue - retire`` (decreasing in ``lambda``), located on the grid and refined by
linear interpolation. Checked against Gittins' published values (``gamma = 0.9``: 0.7029
for ``Beta(1, 1)``, 0.6346 for ``Beta(2, 2)``, 0.6010 for ``Beta(3, 3)``, 0.8695 for
``Beta(10, 2)``; ``gamma = 0.99``: 0.8699 for ``Beta(1, 1)``) and an independent
bisection (tests/test_bandit_baselines.py).

:func:`run` plays ``n_pulls`` pulls of one policy on a batch of tasks (``vmap`` over
tasks, ``lax.scan`` over pulls, one ``jit`` per policy and shape) and returns each task's
total reward (``pseudo=True``: the summed means of the pulled arms, whose expectation is
the same and which the oracle dominates task by task); :func:`run_many` runs several
policies in one compiled program with the same numbers. :func:`bandit_table` gives Duan et
al.'s (RL², 2016) table: ``U[0, 1]`` means, mean total reward with a 95% bootstrap interval
per ``(k, n, method)``.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from metarl.stats import bootstrap_ci

POLICIES = ("random", "oracle", "ucb1", "thompson", "gittins")
DEFAULT_GAMMA = 0.99
GRID_POINTS = 1001  # lambda grid on [0, 1] for the Gittins calibration
HORIZONS_PAST = 3.0  # truncation depth past the needed states, in effective horizons 1 / (1 - gamma)
MIN_EXTRA_DEPTH = 50


# --- Gittins indices ---------------------------------------------------------------------
@functools.lru_cache(maxsize=16)
def _gittins_table(gamma: float, max_pulls: int, grid_points: int, extra_depth: int) -> np.ndarray:
    lam = np.linspace(0.0, 1.0, grid_points)[:, None]  # [L, 1]
    retire = lam / (1.0 - gamma)
    top = max_pulls + 2 + extra_depth  # truncation level a + b
    table = np.full((max_pulls + 1, max_pulls + 1), np.nan)  # [successes, failures]
    # level m = a + b holds a = 1..m-1 (b = m - a); the index of (a, b) is entry a - 1
    a = np.arange(1, top)
    v = np.maximum(lam, a / top) / (1.0 - gamma)  # [L, top - 1] at the truncation level
    for m in range(top - 1, 1, -1):
        a = np.arange(1, m)
        p = a / m
        # successors at level m + 1: success (a + 1, b) is entry a, failure (a, b + 1) entry a - 1
        cont = p * (1.0 + gamma * v[:, a]) + (1.0 - p) * gamma * v[:, a - 1]
        v = np.maximum(retire, cont)
        if m <= max_pulls + 2:
            g = cont - retire  # > 0 below the index, <= 0 from it on
            first = np.argmax(g <= 0.0, axis=0)  # first grid point where retiring is optimal
            first = np.where(np.any(g <= 0.0, axis=0), first, grid_points - 1)
            cols = np.arange(m - 1)
            hi = np.maximum(first, 1)
            g_hi, g_lo = g[hi, cols], g[hi - 1, cols]
            frac = np.where(g_lo > g_hi, g_lo / np.where(g_lo > g_hi, g_lo - g_hi, 1.0), 1.0)
            index = lam[hi - 1, 0] + np.clip(frac, 0.0, 1.0) * (lam[hi, 0] - lam[hi - 1, 0])
            s, f = a - 1, m - a - 1
            table[s, f] = index
    return table


def gittins_indices(gamma: float, max_pulls: int, grid_points: int = GRID_POINTS,
                    extra_depth: int | None = None) -> np.ndarray:
    """Gittins indices ``table[s, f]`` of a Bernoulli arm with ``s`` successes and ``f``
    failures under a ``Beta(1, 1)`` prior (posterior ``Beta(s + 1, f + 1)``), discount
    ``gamma``, for ``s + f <= max_pulls`` (NaN elsewhere). float64 ``[max_pulls + 1]**2``.

    ``extra_depth`` (levels past ``max_pulls`` before truncation) defaults to three
    effective horizons ``3 / (1 - gamma)`` (at least 50); indices then agree with a 4x
    deeper programme to ~1e-6. Cached per arguments.
    """
    if not 0.0 < gamma < 1.0:
        raise ValueError(f"gittins_indices: gamma must lie in (0, 1), got {gamma}")
    if int(max_pulls) != max_pulls or max_pulls < 0:
        raise ValueError(f"gittins_indices: max_pulls must be a non-negative integer, got {max_pulls!r}")
    if extra_depth is None:
        extra_depth = max(MIN_EXTRA_DEPTH, math.ceil(HORIZONS_PAST / (1.0 - gamma)))
    table = _gittins_table(float(gamma), int(max_pulls), int(grid_points), int(extra_depth))
    out = table.copy()
    out.setflags(write=False)
    return out


# --- policies ------------------------------------------------------------------------------
def _argmax_random_ties(key: jax.Array, index: jax.Array) -> jax.Array:
    """A uniformly random maximiser of ``index`` (+inf entries count as maximal)."""
    best = index >= jnp.max(index)
    noise = jax.random.uniform(key, index.shape)
    return jnp.argmax(jnp.where(best, noise, -1.0)).astype(jnp.int32)


def _choose(policy: str, key: jax.Array, means: jax.Array, succ: jax.Array, fail: jax.Array,
            t: jax.Array, table: jax.Array) -> jax.Array:
    k = means.shape[0]
    pulls = succ + fail
    if policy == "random":
        return jax.random.randint(key, (), 0, k)
    if policy == "oracle":
        return _argmax_random_ties(key, means)
    if policy == "ucb1":
        mean = succ / jnp.maximum(pulls, 1.0)
        bonus = jnp.sqrt(2.0 * jnp.log(jnp.maximum(t, 1.0)) / jnp.maximum(pulls, 1.0))
        return _argmax_random_ties(key, jnp.where(pulls > 0, mean + bonus, jnp.inf))
    if policy == "thompson":
        k_draw, k_tie = jax.random.split(key)
        theta = jax.random.beta(k_draw, 1.0 + succ, 1.0 + fail)
        return _argmax_random_ties(k_tie, theta)
    if policy == "gittins":
        index = table[succ.astype(jnp.int32), fail.astype(jnp.int32)]
        return _argmax_random_ties(key, index)
    raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")


def _run_one(policy: str, n_pulls: int, pseudo: bool, means: jax.Array, key: jax.Array,
             table: jax.Array) -> jax.Array:
    k = means.shape[0]

    def pull(carry, key):
        succ, fail, total = carry
        t = succ.sum() + fail.sum()
        k_act, k_rew = jax.random.split(key)
        arm = _choose(policy, k_act, means, succ, fail, t, table)
        reward = jax.random.bernoulli(k_rew, means[arm]).astype(jnp.float32)
        one = jax.nn.one_hot(arm, k, dtype=jnp.float32)
        gain = means[arm] if pseudo else reward
        return (succ + one * reward, fail + one * (1.0 - reward), total + gain), None

    zeros = jnp.zeros((k,), jnp.float32)
    (_, _, total), _ = jax.lax.scan(pull, (zeros, zeros, jnp.zeros((), jnp.float32)),
                                    jax.random.split(key, n_pulls))
    return total


def run(policy: str, params: Any, key: jax.Array, n_pulls: int, *, gamma: float = DEFAULT_GAMMA,
        pseudo: bool = False) -> jax.Array:
    """Total reward of ``policy`` over ``n_pulls`` pulls of each task.

    ``params``: an ``envs.bandit.BanditParams`` (or its ``arm_means`` array) with means of
    shape ``[k]`` (one task: returns a scalar) or ``[tasks, k]`` (returns ``[tasks]``; tasks
    get independent keys split from ``key``). Rewards are ``Bernoulli(mu_arm)``.
    ``gamma``: the Gittins discount (other policies ignore it). ``pseudo=True`` sums the
    pulled arms' means instead of the sampled rewards. Same key, same result.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    return run_many((policy,), params, key, n_pulls, gamma=gamma, pseudo=pseudo)[policy]


@functools.partial(jax.jit, static_argnames=("policies", "n_pulls", "pseudo"))
def _run_batch_many(policies: tuple[str, ...], n_pulls: int, pseudo: bool, means: jax.Array, key: jax.Array,
                    table: jax.Array) -> dict[str, jax.Array]:
    keys = jax.random.split(key, means.shape[0])
    return {policy: jax.vmap(lambda m, k, p=policy: _run_one(p, n_pulls, pseudo, m, k, table))(means, keys)
            for policy in policies}


def run_many(policies, params: Any, key: jax.Array, n_pulls: int, *, gamma: float = DEFAULT_GAMMA,
             pseudo: bool = False) -> dict[str, jax.Array]:
    """:func:`run` for several policies in one compiled program (one compile instead of one per policy).

    ``{policy: totals}`` equal to ``run(policy, params, key, n_pulls, ...)`` for each (the same task keys
    for every policy: common random numbers). ``params`` as for :func:`run`.
    """
    policies = tuple(policies)
    unknown = [p for p in policies if p not in POLICIES]
    if unknown or not policies:
        raise ValueError(f"unknown policy {unknown[0] if unknown else None!r}; known: {', '.join(POLICIES)}")
    if int(n_pulls) != n_pulls or n_pulls < 1:
        raise ValueError(f"n_pulls must be a positive integer, got {n_pulls!r}")
    means = jnp.asarray(getattr(params, "arm_means", params), jnp.float32)
    if means.ndim not in (1, 2) or means.shape[-1] < 1:
        raise ValueError(f"arm means must have shape [k] or [tasks, k], got {means.shape}")
    if "gittins" in policies:
        table = jnp.asarray(np.nan_to_num(gittins_indices(gamma, int(n_pulls)), nan=-1.0), jnp.float32)
    else:
        table = jnp.zeros((1, 1), jnp.float32)
    batch = means if means.ndim == 2 else means[None]
    totals = _run_batch_many(policies, int(n_pulls), bool(pseudo), batch, key, table)
    return totals if means.ndim == 2 else {p: t[0] for p, t in totals.items()}


def bandit_table(k_list, n_list, num_tasks: int, key: jax.Array, methods=POLICIES, *,
                 gamma: float = DEFAULT_GAMMA, seed: int = 0) -> dict[tuple[int, int, str], tuple[float, float, float]]:
    """Duan et al.'s bandit table: ``{(k, n, method): (mean, low, high)}`` total reward.

    Per ``(k, n)``: ``num_tasks`` Bernoulli bandits with ``U[0, 1]`` arm means (the same
    tasks and task keys for every method, i.e. common random numbers), each played for
    ``n`` pulls; the mean total reward over tasks with a 95% percentile bootstrap interval
    (:func:`metarl.stats.bootstrap_ci`, seeded by ``seed``).
    """
    out = {}
    for k in k_list:
        for n in n_list:
            key, k_tasks, k_run = jax.random.split(key, 3)
            means = jax.random.uniform(k_tasks, (int(num_tasks), int(k)))
            for method in methods:
                totals = np.asarray(run(method, means, k_run, int(n), gamma=gamma))
                out[(int(k), int(n), method)] = bootstrap_ci(totals, seed=seed)
    return out


__all__ = ["DEFAULT_GAMMA", "POLICIES", "bandit_table", "gittins_indices", "run", "run_many"]
