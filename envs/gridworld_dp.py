"""Exact finite-horizon values of tabular GridWorld levels by backward dynamic programming.

The state is (time, agent cell, object-existence bitmask); the dynamics are exactly
those of :class:`envs.gridworld.GridWorld` with ``tabular=True``:

    c' = next_cell(c, a);  C = E & objects at c'  (collected)
    r = sum_i reward_i [i in C];  episode ends w.p. p = min(1, sum_i p_term_i [i in C])
    E' = (E \\ C) | R,  R_i ~ Bernoulli(p_respawn_i) for each i not in E
    V_t(c, E) = max_a  r + (1 - p) * E[V_{t+1}(c', E')],   V_T = 0

Values are undiscounted expected returns of one episode from time 0. Everything is
pure JAX (jittable, vmappable over a batch of levels with a common static horizon).
Arrays use the layout ``[cell, mask]``; policies use the tabular observation index
``cell + max_grid_size**2 * mask`` (the observation without its time entry).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from envs.gridworld import NUM_ACTIONS, GridWorld, active_objects, next_cell, per_object
from envs.gridworld_levels import GridWorldParams


def _check_tabular(env: GridWorld) -> None:
    if not isinstance(env, GridWorld) or not env.tabular:
        raise ValueError("gridworld_dp needs a tabular GridWorld (random respawn has no finite state space)")


def _horizon(params: GridWorldParams, horizon: int | None) -> int:
    if horizon is not None:
        if int(horizon) < 1:
            raise ValueError(f"horizon must be a positive int, got {horizon!r}")
        return int(horizon)
    # host-side read: under jit/vmap pass a static horizon >= every max_steps_in_episode
    return int(jnp.max(params.max_steps_in_episode))


def _tables(env: GridWorld, params: GridWorldParams):
    """Time-independent pieces of the backup.

    Returns ``moves [cells, A]`` and, per arrival cell c' and pre-step mask E:
    ``reward [cells, S]``, ``p_term [cells, S]`` and ``trans [cells, S, S]`` = P(E' | c', E).
    """
    n_objs, cells = env.max_n_objs, env.num_cells
    bits = ((jnp.arange(2**n_objs)[:, None] >> jnp.arange(n_objs)) & 1).astype(bool)  # [S, N]
    active = active_objects(params)
    at_cell = active & (params.static_obj_poss[None, :] == jnp.arange(cells)[:, None])  # [cells, N]
    collected = bits[None] & at_cell[:, None]  # [cells, S, N]
    reward = jnp.sum(jnp.where(collected, per_object(params.obj_rewards, params), 0.0), -1)
    p_term = jnp.clip(jnp.sum(jnp.where(collected, per_object(params.obj_p_terminate, params), 0.0), -1), 0.0, 1.0)
    # probability that slot i exists after the step: collected -> 0, kept -> 1, absent -> respawn
    p_one = jnp.where(collected, 0.0, jnp.where(bits[None], 1.0, per_object(params.obj_p_respawn, params)))
    p_one = jnp.where(active, p_one, 0.0)
    trans = jnp.prod(jnp.where(bits[None, None], p_one[:, :, None, :], 1.0 - p_one[:, :, None, :]), -1)
    actions = jnp.arange(NUM_ACTIONS)
    moves = jax.vmap(lambda c: jax.vmap(lambda a: next_cell(c, a, params))(actions))(jnp.arange(cells))
    return moves, reward, p_term, trans


def _q_values(tables, v_next: jax.Array) -> jax.Array:
    """``Q[cell, action, mask]`` given ``V_{t+1}[cell, mask]``."""
    moves, reward, p_term, trans = tables
    arrive = reward + (1.0 - p_term) * jnp.einsum("cst,ct->cs", trans, v_next)
    return arrive[moves]


def _start(env: GridWorld, params: GridWorldParams) -> tuple[jax.Array, jax.Array]:
    mask = jnp.sum(jnp.where(active_objects(params), 2 ** jnp.arange(env.max_n_objs), 0))
    return params.start_pos, mask


@functools.partial(jax.jit, static_argnames=("env", "horizon"))
def _optimal(env: GridWorld, params: GridWorldParams, horizon: int):
    tables = _tables(env, params)

    def backup(v_next, t):
        q = _q_values(tables, v_next)
        v = jnp.where(t < params.max_steps_in_episode, q.max(1), 0.0)
        return v, jnp.argmax(q, 1).astype(jnp.int8)

    zeros = jnp.zeros((env.num_cells, 2**env.max_n_objs), jnp.float32)
    v0, greedy = jax.lax.scan(backup, zeros, jnp.arange(horizon)[::-1])
    return v0, greedy[::-1]


def optimal_values(env: GridWorld, params: GridWorldParams, horizon: int | None = None) -> jax.Array:
    """``V_0[cell, mask]``: optimal expected return from every state at time 0.

    ``horizon`` (static) defaults to ``params.max_steps_in_episode``; a smaller one gives
    the optimum of the episode cut at ``horizon`` steps.
    """
    _check_tabular(env)
    return _optimal(env, params, _horizon(params, horizon))[0]


def optimal_return(env: GridWorld, params: GridWorldParams, horizon: int | None = None) -> jax.Array:
    """Optimal expected undiscounted return of one episode from the level's start."""
    _check_tabular(env)
    v0 = _optimal(env, params, _horizon(params, horizon))[0]
    cell, mask = _start(env, params)
    return v0[cell, mask]


def optimal_policy(env: GridWorld, params: GridWorldParams, horizon: int | None = None) -> jax.Array:
    """Greedy optimal actions ``[horizon, obs_index]`` (int8), obs_index = cell + cells * mask."""
    _check_tabular(env)
    greedy = _optimal(env, params, _horizon(params, horizon))[1]  # [T, cell, mask]
    return jnp.swapaxes(greedy, 1, 2).reshape(greedy.shape[0], -1)


@functools.partial(jax.jit, static_argnames=("env", "horizon"))
def _evaluate(env: GridWorld, params: GridWorldParams, policy: jax.Array, horizon: int) -> jax.Array:
    tables = _tables(env, params)
    cells, n_masks = env.num_cells, 2**env.max_n_objs
    # obs index layout [mask, cell] -> [cell, mask]
    probs = jnp.swapaxes(policy.reshape(*policy.shape[:-2], n_masks, cells, NUM_ACTIONS), -3, -2)
    per_step = probs if probs.ndim == 4 else jnp.broadcast_to(probs, (horizon, *probs.shape))

    def backup(v_next, inputs):
        t, pi = inputs
        q = _q_values(tables, v_next)  # [cell, action, mask]
        v = jnp.einsum("cam,cma->cm", q, pi)
        return jnp.where(t < params.max_steps_in_episode, v, 0.0), None

    zeros = jnp.zeros((cells, n_masks), jnp.float32)
    ts = jnp.arange(horizon)
    v0, _ = jax.lax.scan(backup, zeros, (ts[::-1], per_step[::-1]))
    cell, mask = _start(env, params)
    return v0[cell, mask]


def evaluate_policy_return(
    env: GridWorld, params: GridWorldParams, policy: jax.Array, horizon: int | None = None
) -> jax.Array:
    """Exact expected return of a tabular policy from the level's start.

    ``policy``: action probabilities ``[obs_index, 5]`` (stationary) or
    ``[horizon, obs_index, 5]`` (time-dependent), obs_index = cell + cells * mask.
    """
    _check_tabular(env)
    horizon = _horizon(params, horizon)
    n_states = env.num_cells * 2**env.max_n_objs
    policy = jnp.asarray(policy, jnp.float32)
    if policy.shape not in ((n_states, NUM_ACTIONS), (horizon, n_states, NUM_ACTIONS)):
        raise ValueError(
            f"policy must have shape ({n_states}, {NUM_ACTIONS}) or ({horizon}, {n_states}, {NUM_ACTIONS}), "
            f"got {policy.shape}"
        )
    return _evaluate(env, params, policy, horizon)


def uniform_policy_return(env: GridWorld, params: GridWorldParams, horizon: int | None = None) -> jax.Array:
    """Expected return of the uniformly random policy (a lower reference for regret)."""
    n_states = env.num_cells * 2**env.max_n_objs
    return evaluate_policy_return(env, params, jnp.full((n_states, NUM_ACTIONS), 1.0 / NUM_ACTIONS), horizon)
