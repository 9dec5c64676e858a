"""ReDo dormancy scores (*The Dormant Neuron Phenomenon in Deep RL*).

For a layer with activations ``h`` of shape ``[..., units]`` the score of
unit i is ``s_i = E|h_i| / mean_k E|h_k|`` (expectation over all leading
axes). A unit is tau-dormant when ``s_i <= tau``. A layer whose activations are
all zero has every score 0 (all dormant) instead of 0/0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def redo_scores(activations: jax.Array) -> jax.Array:
    """Per-unit ReDo scores, shape ``(units,)``, from activations ``[..., units]``."""
    activations = jnp.asarray(activations, jnp.float32)
    if activations.ndim < 1:
        raise ValueError(f"activations need a units axis, got shape {activations.shape}")
    mean_abs = jnp.abs(activations).reshape(-1, activations.shape[-1]).mean(axis=0)
    layer_mean = mean_abs.mean()
    safe_mean = jnp.where(layer_mean > 0, layer_mean, 1.0)
    return jnp.where(layer_mean > 0, mean_abs / safe_mean, 0.0)


def dormant_fraction(scores: jax.Array, tau: float = 0.0) -> jax.Array:
    """Fraction of units with ``score <= tau``."""
    return jnp.mean((scores <= tau).astype(jnp.float32))


def layer_dormancy(layer_params: Any, activations: jax.Array) -> Any:
    """Dormancy pytree for one layer: every leaf (kernel, bias) gets the scores.

    Matches the PPO contract: a leaf of shape ``(..., out)`` is paired with a
    vector of shape ``(out,)``.
    """
    scores = redo_scores(activations)
    return jax.tree_util.tree_map(lambda _: scores, layer_params)


def neutral_dormancy(params: Any) -> Any:
    """Ones of shape ``(out,)`` per leaf (``()`` for scalars): "no unit is dormant".

    Used for output layers and whenever no activations are available.
    """
    return jax.tree_util.tree_map(lambda p: jnp.ones(jnp.shape(p)[-1:], jnp.float32), params)
