"""PPO's action distributions: categorical over logits, diagonal Gaussian around a mean.

``log_std`` is ``None`` for a categorical policy and the state-independent
log standard deviation of a Gaussian one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from metarl.agents.env_spec import EnvSpec

LOG_2PI = float(np.log(2.0 * np.pi))


def log_prob_entropy(out: jax.Array, action: jax.Array, log_std: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Log-probability of ``action`` and the entropy, per sample."""
    if log_std is not None:
        z = (action - out) * jnp.exp(-log_std)
        logp = jnp.sum(-0.5 * z**2 - log_std - 0.5 * LOG_2PI, axis=-1)
        entropy = jnp.broadcast_to(jnp.sum(0.5 + 0.5 * LOG_2PI + log_std), logp.shape)
        return logp, entropy
    log_probs = jax.nn.log_softmax(out)
    index = action.astype(jnp.int32)[..., None]
    logp = jnp.take_along_axis(log_probs, index, axis=-1)[..., 0]
    entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)
    return logp, entropy


def sample_with_noise(out: jax.Array, noise: jax.Array, log_std: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Action and its log-probability from pre-drawn noise: Gumbel-max, or a reparametrised Gaussian."""
    if log_std is not None:
        action = out + jnp.exp(log_std) * noise
        logp = jnp.sum(-0.5 * noise**2 - log_std - 0.5 * LOG_2PI, axis=-1)
        return action, logp
    action = jnp.argmax(out + noise, axis=-1)
    logp = jnp.take_along_axis(jax.nn.log_softmax(out), action[..., None], axis=-1)[..., 0]
    return action, logp


def env_action(spec: EnvSpec, action: jax.Array) -> jax.Array:
    """What the env takes: int32 indices, or Gaussian samples clipped to the box and in its shape."""
    if spec.continuous:
        clipped = jnp.clip(action, spec.action_low, spec.action_high)
        return clipped.reshape((action.shape[0],) + spec.action_shape)
    return action.astype(jnp.int32)
