"""Per-parameter input features of the OPEN-style learned optimizer.

Static (trace-time) facts about the parameter tree — which layer a leaf is
in, whether it belongs to the actor — come from the tree's key paths. Traced
features are built per tensor by :func:`tensor_features`.
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

# OPEN's epsilons: inside log|x| and in the second-moment normaliser.
LOG_EPS = 1e-13
NORM_EPS = 1e-5


def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def leaf_paths(tree: Any) -> list[tuple[str, ...]]:
    """Key path of every leaf, as strings, in ``tree_leaves`` order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [tuple(_key_name(k) for k in path) for path, _ in flat]


def _layer_order(layer: tuple[str, ...]) -> tuple:
    # Numbered layers ("hidden_2", "Dense_10") by number, then unnumbered ones
    # ("head", "output") by name: networks name their last layer without an index.
    name = layer[-1] if layer else ""
    match = re.search(r"(\d+)$", name)
    return (0, int(match.group(1)), name) if match else (1, 0, name)


def layer_proportions(tree: Any) -> list[float]:
    """Layer index / (layers - 1) per leaf, derived from the tree's key paths.

    A leaf's *layer* is its parent node (so a kernel and its bias share one);
    a layer's *network* is the layer's parent (so ``actor`` and ``critic``
    are numbered separately). Within a network, layers whose name ends in a
    number come first, in numeric order, then the others by name (so
    ``hidden_0, hidden_1, head`` and ``Dense_0 .. Dense_10`` are in forward
    order). A network with one layer gets 0.
    """
    paths = leaf_paths(tree)
    layers = [p[:-1] for p in paths]
    by_network: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
    for layer in layers:
        siblings = by_network.setdefault(layer[:-1], [])
        if layer not in siblings:
            siblings.append(layer)
    proportion = {}
    for siblings in by_network.values():
        ordered = sorted(siblings, key=_layer_order)
        last = max(len(ordered) - 1, 1)
        proportion.update({layer: i / last for i, layer in enumerate(ordered)})
    return [proportion[layer] for layer in layers]


def noise_mask(tree: Any, noise_on: tuple[str, ...]) -> list[bool]:
    """Which leaves get learned noise: those with a path component in ``noise_on``."""
    return [any(part in noise_on for part in path) for path in leaf_paths(tree)]


def second_moment_normalize(x: jax.Array, segment_ids: np.ndarray, num_segments: int) -> jax.Array:
    """Divide each feature (column of ``x: [N, F]``) by its RMS within each tensor.

    ``segment_ids[n]`` names the tensor of row n (static), so every tensor of
    a parameter tree is normalised in one vectorised pass.
    """
    counts = np.bincount(segment_ids, minlength=num_segments).astype(np.float32)[:, None]
    mean_square = jax.ops.segment_sum(jnp.square(x), segment_ids, num_segments) / counts
    return x * jax.lax.rsqrt(NORM_EPS + mean_square[segment_ids])


def update_momenta(momenta: jax.Array, grad: jax.Array, betas: jax.Array) -> jax.Array:
    """``m_b <- b m_b + (1 - b) g`` for every timescale b (last axis)."""
    return betas * momenta + (1.0 - betas) * grad[..., None]


def broadcast_dormancy(dormancy: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Spread a per-output-unit score vector ``(out,)`` over a ``(..., out)`` tensor."""
    dormancy = jnp.asarray(dormancy, jnp.float32)
    if dormancy.size == 1:
        return jnp.broadcast_to(dormancy.reshape(()), shape)
    if dormancy.shape != shape[-1:]:
        raise ValueError(f"dormancy of shape {dormancy.shape} does not match a parameter of shape {shape}")
    return jnp.broadcast_to(dormancy, shape)


def parameter_features(
    param: jax.Array,
    grad: jax.Array,
    momenta: jax.Array,
    *,
    segment_ids: np.ndarray,
    num_segments: int,
    progress: jax.Array,
    epoch_progress: jax.Array,
    layer_proportion: np.ndarray,
    dormancy: jax.Array,
) -> jax.Array:
    """Inputs ``[N, 7 + 2 * n_betas]`` for N flattened parameters.

    ``param``, ``grad``, ``dormancy``: ``[N]``; ``momenta``: ``[N, n_betas]``;
    ``segment_ids``/``layer_proportion``: static ``[N]`` arrays. Order:
    ``[p, sign m_b..., log|m_b|..., sign g, log|g|]`` normalised by their
    second moment over each tensor (as OPEN), then the un-normalised
    ``[progress, epoch_progress, layer_proportion, dormancy]``.
    """
    per_element = jnp.concatenate(
        [
            param[:, None],
            jnp.sign(momenta),
            jnp.log(jnp.abs(momenta) + LOG_EPS),
            jnp.sign(grad)[:, None],
            jnp.log(jnp.abs(grad) + LOG_EPS)[:, None],
        ],
        axis=-1,
    )
    per_element = second_moment_normalize(per_element, segment_ids, num_segments)
    n = param.shape[0]
    constants = jnp.stack(
        [
            jnp.broadcast_to(jnp.asarray(progress, jnp.float32), (n,)),
            jnp.broadcast_to(jnp.asarray(epoch_progress, jnp.float32), (n,)),
            jnp.asarray(layer_proportion, jnp.float32),
            dormancy,
        ],
        axis=-1,
    )
    return jnp.concatenate([per_element, constants], axis=-1)


def tensor_features(param, grad, momenta, *, progress, epoch_progress, layer_proportion: float, dormancy) -> jax.Array:
    """:func:`parameter_features` for a single tensor, shaped ``param.shape + (F,)``."""
    shape, n = param.shape, param.size
    flat = parameter_features(
        param.reshape(n), grad.reshape(n), momenta.reshape(n, -1),
        segment_ids=np.zeros(n, np.int32), num_segments=1,
        progress=progress, epoch_progress=epoch_progress,
        layer_proportion=np.full(n, layer_proportion, np.float32),
        dormancy=broadcast_dormancy(dormancy, shape).reshape(n),
    )
    return flat.reshape(shape + (flat.shape[-1],))


def num_features(num_betas: int) -> int:
    return 7 + 2 * num_betas
