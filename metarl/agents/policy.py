"""The one policy API: act with given parameters, and score a policy by whole episodes.

An agent exposes its policy as an ``ActFn``::

    act(params, obs, key) -> action

on a *batch* of observations as the env returns them (leading axis = episodes)
with one key for the batch; greedy policies ignore the key. Every evaluator,
baseline and report runs policies through :func:`evaluate_policy`, so with the
same key two methods meet the same start states and the same env randomness.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

ActFn = Callable[[Any, jax.Array, jax.Array], jax.Array]

_NO_TIME_LIMIT = 100_000


def episode_bound(env_params: Any) -> jax.Array:
    """Steps after which every episode has ended (its time limit; a guard for envs without one)."""
    limit = getattr(env_params, "max_steps_in_episode", _NO_TIME_LIMIT)
    return jnp.max(jnp.asarray(limit, jnp.int32)) + 1


def evaluate_policy(
    act: ActFn,
    params: Any,
    env: Any,
    env_params: Any,
    key: jax.Array,
    episodes: int,
    *,
    max_steps: int | None = None,
    batched_params: bool = False,
) -> dict[str, jax.Array]:
    """The first episode of ``episodes`` fresh envs under ``act(params, ., .)``.

    ``env_params`` is one task shared by every episode, or (``batched_params``)
    one task per episode (leading axis ``episodes``). Episodes run in parallel
    until all have ended or ``max_steps`` (default: the env's time limit) steps.

    Returns per-episode arrays ``[episodes]``: ``return`` (undiscounted),
    ``length``, ``success`` (the env's ``info['success']`` at the end when it
    has one, else "terminated with a positive return") and ``finished``.
    """
    param_axis = 0 if batched_params else None
    k_reset, k_run = jax.random.split(key)
    obs, env_state = jax.vmap(env.reset, in_axes=(0, param_axis))(jax.random.split(k_reset, episodes), env_params)
    bound = episode_bound(env_params) if max_steps is None else jnp.asarray(max_steps, jnp.int32)
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, param_axis))

    def cond(carry):
        t, finished = carry[0], carry[-1]
        return jnp.logical_and(t < bound, ~jnp.all(finished))

    def body(carry):
        t, key, env_state, obs, total, length, success, finished = carry
        key, k_act, k_env = jax.random.split(key, 3)
        action = act(params, obs, k_act)
        obs, env_state, reward, terminated, truncated, info = step_env(
            jax.random.split(k_env, episodes), env_state, action, env_params)
        live = ~finished
        total = total + jnp.where(live, reward, 0.0)
        length = length + live.astype(jnp.int32)
        ended = terminated | truncated
        solved = info.get("success", terminated & (total > 0)) if isinstance(info, dict) else terminated & (total > 0)
        success = jnp.where(live & ended, jnp.asarray(solved, bool), success)
        return t + 1, key, env_state, obs, total, length, success, finished | ended

    zeros = jnp.zeros((episodes,), jnp.float32)
    carry = (jnp.zeros((), jnp.int32), k_run, env_state, obs, zeros, jnp.zeros((episodes,), jnp.int32),
             jnp.zeros((episodes,), bool), jnp.zeros((episodes,), bool))
    _, _, _, _, total, length, success, finished = jax.lax.while_loop(cond, body, carry)
    return {"return": total, "length": length, "success": success, "finished": finished}


def categorical_act(logits_fn: Callable[[Any, jax.Array], jax.Array], greedy: bool = False) -> ActFn:
    """An ``ActFn`` from ``logits_fn(params, obs) -> logits``: sample, or take the arg-max when ``greedy``."""

    def act(params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        logits = logits_fn(params, obs)
        return jnp.argmax(logits, axis=-1) if greedy else jax.random.categorical(key, logits)

    return act


def gaussian_act(mean_log_std_fn: Callable[[Any, jax.Array], tuple[jax.Array, jax.Array]], greedy: bool = False) -> ActFn:
    """An ``ActFn`` from ``mean_log_std_fn(params, obs) -> (mean, log_std)``: a diagonal
    Gaussian sample, or the mean when ``greedy`` (unclipped: bounds are the caller's)."""

    def act(params: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        mean, log_std = mean_log_std_fn(params, obs)
        if greedy:
            return mean
        return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)

    return act
