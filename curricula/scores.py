"""Level scores for Prioritized Level Replay (PLR / robust PLR / ACCEL).

All functions take per-step rollout arrays of shape ``[T]`` or ``[T, N]``
(time first, ``N`` parallel envs = levels) and return one score per column
(shape ``[]`` or ``[N]``).

A score is a *time average within each episode*, then a mean over the
episodes of the column (Jiang et al., *Prioritized Level Replay*, 2021;
the same convention as DramaCow/jaxued's rollout statistics). ``dones[t]``
marks that the episode containing step ``t`` ended at ``t``; the trailing,
unfinished episode counts too unless ``include_incomplete=False`` (then a
column without a finished episode scores ``-inf``, "no information").

* positive value loss (PVL): ``mean_t max(A_t, 0)``   (robust PLR, ACCEL)
* mean |GAE| (L1 value loss): ``mean_t |A_t|``       (original PLR)
* MaxMC: ``mean_t (R_max - V(s_t))`` with ``R_max`` the best return ever
  achieved on the level                                (robust PLR, ACCEL)

``A_t`` is GAE. ``max_episode_return`` gives the best finished-episode return
of each column, which MaxMC's ``R_max`` is built from.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _column_episode_mean(x: jax.Array, dones: jax.Array, include_incomplete: bool) -> jax.Array:
    """Mean over episodes of the within-episode time average, for one column ``[T]``."""
    num_steps = x.shape[0]
    dones = dones.astype(jnp.int32)
    # episode id of step t: number of episodes finished strictly before t
    episode = jnp.cumsum(dones) - dones
    sums = jax.ops.segment_sum(x, episode, num_segments=num_steps)
    lengths = jax.ops.segment_sum(jnp.ones_like(x), episode, num_segments=num_steps)
    finished = jnp.arange(num_steps) < jnp.sum(dones)
    counted = finished | (include_incomplete & (lengths > 0))
    per_episode = sums / jnp.maximum(lengths, 1.0)
    n = jnp.sum(counted)
    mean = jnp.sum(jnp.where(counted, per_episode, 0.0)) / jnp.maximum(n, 1)
    return jnp.where(n > 0, mean, -jnp.inf).astype(jnp.float32)


def episode_mean(x: jax.Array, dones: jax.Array, include_incomplete: bool = True) -> jax.Array:
    """Per-column mean over episodes of the per-episode time average of ``x``."""
    x = jnp.asarray(x, jnp.float32)
    dones = jnp.asarray(dones)
    if x.shape != dones.shape or x.ndim not in (1, 2):
        raise ValueError(f"scores need matching [T] or [T, N] arrays, got {x.shape} and {dones.shape}")
    if x.ndim == 1:
        return _column_episode_mean(x, dones, include_incomplete)
    return jax.vmap(_column_episode_mean, in_axes=(1, 1, None))(x, dones, include_incomplete)


def positive_value_loss(advantages: jax.Array, dones: jax.Array, include_incomplete: bool = True) -> jax.Array:
    """PVL: episode-averaged ``max(A_t, 0)`` (Jiang et al. 2021, robust PLR)."""
    return episode_mean(jnp.maximum(advantages, 0.0), dones, include_incomplete)


def mean_abs_gae(advantages: jax.Array, dones: jax.Array, include_incomplete: bool = True) -> jax.Array:
    """GAE-L1 / L1 value loss: episode-averaged ``|A_t|`` (original PLR)."""
    return episode_mean(jnp.abs(advantages), dones, include_incomplete)


def max_mc(
    values: jax.Array, dones: jax.Array, max_returns: jax.Array, include_incomplete: bool = True
) -> jax.Array:
    """MaxMC: episode-averaged ``R_max - V(s_t)``; ``max_returns`` is ``[]`` or ``[N]``."""
    values = jnp.asarray(values, jnp.float32)
    return episode_mean(jnp.asarray(max_returns, jnp.float32) - values, dones, include_incomplete)


def max_episode_return(rewards: jax.Array, dones: jax.Array) -> jax.Array:
    """Best return among the episodes that finished inside the rollout (``-inf`` if none)."""
    rewards = jnp.asarray(rewards, jnp.float32)
    dones = jnp.asarray(dones)

    def column(r, d):
        d = d.astype(jnp.int32)
        episode = jnp.cumsum(d) - d
        sums = jax.ops.segment_sum(r, episode, num_segments=r.shape[0])
        finished = jnp.arange(r.shape[0]) < jnp.sum(d)
        return jnp.max(jnp.where(finished, sums, -jnp.inf))

    if rewards.ndim == 1:
        return column(rewards, dones)
    return jax.vmap(column, in_axes=(1, 1))(rewards, dones)


SCORE_FUNCTIONS = {"pvl": positive_value_loss, "gae_l1": mean_abs_gae, "max_mc": max_mc}
