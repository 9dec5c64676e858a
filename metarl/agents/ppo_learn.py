"""PPO's learning phase: ``update_epochs`` shuffled passes over minibatches of one batch.

The optimizer gets PPO's extra arguments (``progress``, ``epoch_progress``,
``key``, ``dormancy``) so learned optimizers can use them. With per-sample
weights (robust PLR / ACCEL), a minibatch with no trained sample leaves params
and optimizer state untouched and reports NaN losses; a fully masked batch
skips the epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from metarl.agents import random_bits
from metarl.agents.ppo_config import PPOConfig
from metarl.agents.ppo_loss import Batch, pack

LOSS_METRICS = ("actor_loss", "value_loss", "entropy", "approx_kl", "clip_frac")
LossFn = Callable[[Any, Batch], tuple[jax.Array, tuple[dict, Any]]]


def optimizer_view(params: Any, flat: bool) -> tuple[Any, Callable[[Any], Any]]:
    """What the optimizer sees and how to get the param tree back.

    PPO's default Adam works on one flat vector: Adam is elementwise, so this
    changes nothing numerically, but one fused kernel over all parameters
    replaces a dozen per-leaf ones in every minibatch step (the learn phase is
    launch-bound on CPU). User-supplied optimizers see the parameter pytree.
    """
    if flat:
        return ravel_pytree(params)
    return params, lambda tree: tree


def learn(
    config: PPOConfig,
    loss: LossFn,
    tx: optax.GradientTransformationExtraArgs,
    view: Any,
    opt_state: Any,
    batch: Batch,
    progress: jax.Array,
    perm_bits: jax.Array,
    opt_keys: jax.Array,
) -> tuple[Any, Any, dict]:
    """``(view, opt_state, mean loss metrics)`` after the epochs; ``loss(view, minibatch)``."""
    cfg = config
    n_mb, epochs = cfg.num_minibatches, cfg.update_epochs
    masked = batch.weight is not None
    lr_scale = 1.0 - progress if cfg.anneal_lr else 1.0
    grad_fn = jax.value_and_grad(loss, has_aux=True)
    packed, unpack = pack(batch)

    def gradient_step(view, opt_state, step_index, minibatch, key):
        (_, (aux, dormancy)), grads = grad_fn(view, minibatch)
        if cfg.max_grad_norm > 0:
            norm = optax.global_norm(grads)
            scale = jnp.minimum(1.0, cfg.max_grad_norm / (norm + 1e-12))
            grads = jax.tree.map(lambda g: g * scale, grads)
        extra = {
            "progress": progress,
            "epoch_progress": step_index.astype(jnp.float32) / (n_mb * epochs),
            "key": key,
            "dormancy": dormancy,
        }
        updates, opt_state = tx.update(grads, opt_state, view, **extra)
        if cfg.anneal_lr:
            updates = jax.tree.map(lambda u: u * lr_scale, updates)
        return (optax.apply_updates(view, updates), opt_state), aux

    def minibatch_step(carry, xs):
        view, opt_state = carry
        step_index, rows, key = xs
        minibatch = unpack(rows)
        new_carry, aux = gradient_step(view, opt_state, step_index, minibatch, key)
        if not masked:
            return new_carry, aux
        # Adam fed zeros would still move its moments and counter: keep the old state.
        trained = jnp.sum(minibatch.weight) > 0
        keep = lambda new, old: jnp.where(trained, new, old)  # noqa: E731
        new_carry = jax.tree.map(keep, new_carry, (view, opt_state))
        return new_carry, jax.tree.map(lambda a: jnp.where(trained, a, jnp.nan), aux)

    def epoch(carry, xs):
        epoch_index, bits, keys = xs
        # Shuffle = one sort of random bits and one gather of the packed batch.
        minibatches = packed[random_bits.permutation(bits)].reshape((n_mb, cfg.minibatch_size, packed.shape[1]))
        steps = epoch_index * n_mb + jnp.arange(n_mb)
        return jax.lax.scan(minibatch_step, carry, (steps, minibatches, keys))

    def all_epochs(carry):
        carry, aux = jax.lax.scan(epoch, carry, (jnp.arange(epochs), perm_bits, opt_keys))
        # Loss metrics average the minibatches that were trained on (NaN if none).
        return carry, jax.tree.map(jnp.nanmean if masked else jnp.mean, aux)

    carry = (view, opt_state)
    if masked:
        skip = lambda carry: (carry, {k: jnp.float32(jnp.nan) for k in LOSS_METRICS})  # noqa: E731
        carry, aux = jax.lax.cond(jnp.any(batch.weight > 0), all_epochs, skip, carry)
    else:
        carry, aux = all_epochs(carry)
    return (*carry, aux)
