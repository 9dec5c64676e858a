"""SAC's losses and the target-network update, as pure functions of arrays.

With temperature ``alpha`` and twin critics ``Q1, Q2`` (targets ``Q1', Q2'``):

* soft target  ``y = reward_scale * r + gamma * (1 - terminated) * (min(Q1', Q2')(s', a') - alpha log pi(a'|s'))``,
  ``a' ~ pi(.|s')``. Only a true termination stops bootstrapping: a time limit
  (truncation) still bootstraps from the final observation.
* critics      ``J_Q = sum_i 1/2 E[(Q_i(s, a) - y)^2]``.
* actor        ``J_pi = E[alpha log pi(a|s) - min(Q1, Q2)(s, a)]``, ``a ~ pi(.|s)`` reparametrised.
* temperature  ``J(alpha) = E[-alpha (log pi(a|s) + target_entropy)]`` (gradient through ``alpha = exp(log_alpha)``
  only): ``alpha`` grows while the entropy ``-log pi`` is below the target.
* targets      ``theta' <- tau theta + (1 - tau) theta'`` (Polyak averaging).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from metarl.agents.sac_networks import actor_mean_log_std, critic_values, sample_action


def soft_target(reward: jax.Array, terminated: jax.Array, next_q: jax.Array, next_logp: jax.Array, alpha: jax.Array,
                gamma: float, reward_scale: float = 1.0) -> jax.Array:
    """The critics' regression target ``y`` per transition; ``next_q`` is ``[2, batch]`` (clipped double-Q)."""
    soft_value = jnp.min(next_q, axis=0) - alpha * next_logp
    return reward_scale * reward + gamma * (1.0 - terminated.astype(jnp.float32)) * soft_value


def critic_loss(critics: Any, obs: jax.Array, action: jax.Array, target: jax.Array,
                activation: str, heads: int = 0) -> tuple[jax.Array, jax.Array]:
    """``(J_Q, Q-values [2, batch])``; ``target`` is treated as a constant."""
    q = critic_values(critics, obs, action, activation, heads)
    loss = 0.5 * jnp.sum(jnp.mean(jnp.square(q - jax.lax.stop_gradient(target)), axis=-1))
    return loss, q


def actor_loss(actor: Any, critics: Any, obs: jax.Array, noise: jax.Array, alpha: jax.Array,
               activation: str, heads: int = 0) -> tuple[jax.Array, jax.Array]:
    """``(J_pi, log pi(a|s) [batch])``; the critics and ``alpha`` are constants here."""
    mean, log_std = actor_mean_log_std(actor, obs, activation, heads)
    action, logp = sample_action(mean, log_std, noise)
    q = critic_values(jax.lax.stop_gradient(critics), obs, action, activation, heads)
    return jnp.mean(jax.lax.stop_gradient(alpha) * logp - jnp.min(q, axis=0)), logp


def alpha_loss(log_alpha: jax.Array, logp: jax.Array, target_entropy: float) -> jax.Array:
    """``J(alpha)``; ``logp`` is a constant."""
    return -jnp.mean(jnp.exp(log_alpha) * (jax.lax.stop_gradient(logp) + target_entropy))


def polyak(target: Any, online: Any, tau: float) -> Any:
    """``tau * online + (1 - tau) * target``, leaf by leaf."""
    return jax.tree.map(lambda t, o: (1.0 - tau) * t + tau * o, target, online)
