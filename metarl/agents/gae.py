"""Generalised advantage estimation that tells truncation from termination.

With gymnax's auto-reset, ``s'_t`` is ``info["final_observation"]`` when the
episode ended at ``t`` (else the next observation), so ``next_values`` is
``V(s'_t)`` and never the value of the next episode's first state:

    delta_t = r_t + gamma * (1 - terminated_t) * V(s'_t) - V(s_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

A time limit (truncated, not terminated) cuts the trace but still bootstraps.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    done: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets; all inputs time-major ``[T, ...]``."""
    not_terminated = 1.0 - terminated.astype(jnp.float32)
    trace = gamma * gae_lambda * (1.0 - done.astype(jnp.float32))
    deltas = rewards + gamma * not_terminated * next_values - values

    def backward(next_advantage, xs):
        delta, decay = xs
        advantage = delta + decay * next_advantage
        return advantage, advantage

    _, advantages = jax.lax.scan(backward, jnp.zeros_like(deltas[0]), (deltas, trace), reverse=True)
    return advantages, advantages + values


def legacy_gae(
    rewards: jax.Array, values: jax.Array, last_value: jax.Array, done: jax.Array, gamma: float, gae_lambda: float
) -> tuple[jax.Array, jax.Array]:
    """PureJaxRL's single-``done`` GAE (time limits treated as terminal).

    Only for reproducing legacy numbers: the bootstrap uses the value of the
    *next* stored observation, which after an auto-reset belongs to a new episode
    (masked out here by ``done``).
    """
    next_values = jnp.concatenate([values[1:], last_value[None]], axis=0)
    return gae(rewards, values, next_values, done, done, gamma, gae_lambda)
