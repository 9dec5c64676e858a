"""PPO's training batch (named arrays) and its loss.

The actor loss is the mirror-learning form ``-mean(r*A - drift(meta, r, A, progress))``
(PPO's clip is :class:`metarl.objectives.ppo_clip.PPOClip`). With a per-sample
``weight`` (robust PLR / ACCEL masks) every mean is a weighted mean over the
trained samples and advantages are normalised with their statistics.

The learn loop shuffles the batch as one float32 matrix (:func:`pack`): one
gather per epoch instead of one per field keeps the CPU program launch-light.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.agents import networks
from metarl.agents.distributions import log_prob_entropy
from metarl.agents.ppo_config import PPOConfig


@struct.dataclass
class Batch:
    """Flat samples ``[b, ...]``; ``obs`` is normalised as the actor saw it."""

    obs: jax.Array  # [b, obs_dim] float32
    action: jax.Array  # [b] int32 (discrete) or [b, action_dim] float32
    old_logp: jax.Array
    old_value: jax.Array
    advantage: jax.Array
    target: jax.Array
    weight: jax.Array | None = None  # [b] trained (> 0) or not; None: every sample counts


def pack(batch: Batch) -> tuple[jax.Array, Callable[[jax.Array], Batch]]:
    """``(matrix [b, columns] float32, unpack)``; ``unpack`` turns rows of the matrix back into a Batch."""
    leaves, treedef = jax.tree.flatten(batch)
    rows = leaves[0].shape[0]
    trailing = [leaf.shape[1:] for leaf in leaves]
    dtypes = [leaf.dtype for leaf in leaves]
    matrix = jnp.concatenate([leaf.reshape(rows, -1).astype(jnp.float32) for leaf in leaves], axis=1)

    def unpack(packed: jax.Array) -> Batch:
        out, start = [], 0
        for shape, dtype in zip(trailing, dtypes):
            width = math.prod(shape)
            column = packed[:, start : start + width]
            out.append(column.reshape((packed.shape[0],) + shape).astype(dtype))
            start += width
        return jax.tree.unflatten(treedef, out)

    return matrix, unpack


def weighted_mean(x: jax.Array, weight: jax.Array) -> jax.Array:
    """Mean over the samples with weight > 0 (0 when all weights are 0)."""
    total = jnp.sum(weight)
    return jnp.sum(weight * x) / jnp.where(total > 0, total, 1.0)


def ppo_loss(
    params: Any,
    batch: Batch,
    objective_params: Any,
    progress: jax.Array,
    *,
    config: PPOConfig,
    drift: Any,
    continuous: bool,
) -> tuple[jax.Array, tuple[dict, Any]]:
    """``(total, (metrics, dormancy))``; dormancy scores (no gradient) feed learned optimizers."""
    cfg, weight = config, batch.weight
    mean = jnp.mean if weight is None else (lambda x: weighted_mean(x, weight))
    out, actor_hidden = networks.apply_mlp(params["actor"], batch.obs, cfg.activation)
    value, critic_hidden = networks.apply_mlp(params["critic"], batch.obs, cfg.activation)
    value = value[:, 0]
    logp, entropy = log_prob_entropy(out, batch.action, params["log_std"] if continuous else None)
    log_ratio = logp - batch.old_logp
    ratio = jnp.exp(log_ratio)
    advantage = batch.advantage
    if weight is None:
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
    else:  # normalise with the statistics of the samples that are trained on
        centred = advantage - mean(advantage)
        advantage = centred / (jnp.sqrt(mean(jnp.square(centred))) + 1e-8)
    drift_value = drift(objective_params, ratio, advantage, progress)
    actor_loss = -mean(ratio * advantage - drift_value)
    value_err = jnp.square(value - batch.target)
    if cfg.clip_value:
        clipped = batch.old_value + jnp.clip(value - batch.old_value, -cfg.clip_eps, cfg.clip_eps)
        value_err = jnp.maximum(value_err, jnp.square(clipped - batch.target))
    value_loss = 0.5 * mean(value_err)
    entropy = mean(entropy)
    total = actor_loss + cfg.vf_coef * value_loss - cfg.ent_coef * entropy
    aux = {
        "actor_loss": actor_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": mean((ratio - 1.0) - log_ratio),
        "clip_frac": mean((jnp.abs(ratio - 1.0) > cfg.clip_eps).astype(jnp.float32)),
    }
    dormancy = networks.dormancy_scores(params, actor_hidden, critic_hidden, weight)
    return total, (aux, jax.lax.stop_gradient(dormancy))
