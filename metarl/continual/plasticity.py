"""Plasticity diagnostics (docs/algorithms.md §6.2), pure and jittable.

From activations ``[batch, ..., units]``: the ReDo score and the τ-dormant
fraction (τ ∈ {0, 0.025, 0.1}), effective rank (Roy & Vetterli) and stable
rank (``srank_δ`` of *Implicit Under-Parameterization*, δ = 0.01).
From parameter trees: mean |w|, distance from initialisation and gradient
norm per layer. A "layer" is a dict holding a ``kernel`` (and usually a
``bias``), as in :mod:`metarl.agents.networks`; its name is the path to it,
e.g. ``actor/hidden_0``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

DORMANT_TAUS = (0.0, 0.025, 0.1)
SRANK_DELTA = 0.01
RELATIVE_SINGULAR_FLOOR = 1e-3  # singular values below this share of the largest count as 0
JACOBI_SWEEPS = 8


def dormant_scores(h: jax.Array) -> jax.Array:
    """ReDo score per unit: ``E|h_i| / mean_k E|h_k|``.

    ``h`` is ``[batch, ..., units]``; every axis but the last is averaged
    (batch and, for convolutions, space). A layer with all-zero activations
    scores 0 everywhere (all units dormant).
    """
    mean_abs = jnp.mean(jnp.abs(h.astype(jnp.float32)), axis=tuple(range(h.ndim - 1)))
    layer_mean = jnp.mean(mean_abs)
    return jnp.where(layer_mean > 0, mean_abs / jnp.where(layer_mean > 0, layer_mean, 1.0), 0.0)


def dormant_fraction(h: jax.Array, tau: float) -> jax.Array:
    """Fraction of units with ReDo score ``<= tau`` (τ = 0: exactly silent units)."""
    return jnp.mean((dormant_scores(h) <= tau).astype(jnp.float32))


def _round_robin_pairs(n: int) -> np.ndarray:
    """``[n-1, n/2, 2]`` disjoint index pairs per round; every pair meets once (n even)."""
    others = list(range(1, n))
    rounds = []
    for _ in range(n - 1):
        order = [0] + others
        rounds.append([(order[i], order[n - 1 - i]) for i in range(n // 2)])
        others = others[-1:] + others[:-1]
    return np.asarray(rounds, dtype=np.int32)


def symmetric_eigenvalues(matrix: jax.Array, sweeps: int = JACOBI_SWEEPS) -> jax.Array:
    """Eigenvalues (descending) of a symmetric matrix by parallel cyclic Jacobi rotations.

    Plain jnp ops only: jaxlib 0.10's LAPACK custom calls on CPU (svd, eigh, qr)
    deadlocked batched continual-RL runs on 2 cores, and were slow when they ran.
    """
    n = matrix.shape[-1]
    size = n + n % 2
    matrix = matrix.astype(jnp.float32)
    # pad to even size with a decoupled diagonal entry below the whole spectrum (dropped below)
    below = -(jnp.sqrt(jnp.sum(matrix**2)) + 1.0)
    a = jnp.full((size, size), 0.0, jnp.float32).at[:n, :n].set(matrix)
    a = a.at[size - 1, size - 1].set(jnp.where(size > n, below, a[size - 1, size - 1]))
    pairs = jnp.asarray(_round_robin_pairs(size))
    p, q = pairs[..., 0], pairs[..., 1]

    def rotate(a, pq):
        p, q = pq
        app, aqq, apq = a[p, p], a[q, q], a[p, q]
        theta = 0.5 * jnp.arctan2(2.0 * apq, aqq - app)  # zeroes the (p, q) entry
        # the equivalent angle with |theta| <= pi/4 (the classical choice; larger ones stall convergence)
        theta = jnp.where(jnp.abs(theta) > jnp.pi / 4, theta - jnp.sign(theta) * jnp.pi / 2, theta)
        c, s = jnp.cos(theta), jnp.sin(theta)
        rot = jnp.zeros_like(a).at[p, p].set(c).at[q, q].set(c).at[p, q].set(s).at[q, p].set(-s)
        return rot.T @ a @ rot, None

    def sweep(a, _):
        return jax.lax.scan(rotate, a, (p, q))[0], None

    a, _ = jax.lax.scan(sweep, a, None, length=sweeps)
    return jnp.sort(jnp.diagonal(a))[::-1][:n]


def _singular_values(features: jax.Array) -> jax.Array:
    """Descending singular values from the eigenvalues of the (units x units) Gram matrix.

    Squaring loses float32 precision below ~1e-3 of the top value, so those are
    treated as zero (they carry no weight in the rank measures anyway).
    """
    features = features.reshape(-1, features.shape[-1]).astype(jnp.float32)
    s = jnp.sqrt(jnp.clip(symmetric_eigenvalues(features.T @ features), 0.0))
    return jnp.where(s > RELATIVE_SINGULAR_FLOOR * s[0], s, 0.0)


def effective_rank(features: jax.Array) -> jax.Array:
    """``exp(H(p))`` with ``p_k = σ_k / Σσ`` (0 log 0 = 0); 0 for a zero matrix."""
    s = _singular_values(features)
    total = jnp.sum(s)
    p = s / jnp.where(total > 0, total, 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.where(total > 0, jnp.exp(entropy), 0.0)


def stable_rank(features: jax.Array, delta: float = SRANK_DELTA) -> jax.Array:
    """``min{k : Σ_{j<=k} σ_j / Σσ >= 1 - δ}`` (int32); 0 for a zero matrix."""
    s = _singular_values(features)  # descending
    total = jnp.sum(s)
    frac = jnp.cumsum(s) / jnp.where(total > 0, total, 1.0)
    # number of leading prefixes still short of 1-δ, plus one (tolerate fp rounding)
    k = jnp.sum(frac < (1.0 - delta) - 1e-6) + 1
    return jnp.where(total > 0, k, 0).astype(jnp.int32)


def activation_stats(h: jax.Array, taus: tuple[float, ...] = DORMANT_TAUS) -> dict[str, jax.Array]:
    """All activation diagnostics of one layer."""
    out = {f"dormant_{tau:g}": dormant_fraction(h, tau) for tau in taus}
    out["effective_rank"] = effective_rank(h)
    out["stable_rank"] = stable_rank(h)
    return out


# ---------------------------------------------------------------------------
# parameter-tree diagnostics
# ---------------------------------------------------------------------------


def _path_name(path) -> str:
    parts = []
    for p in path:
        parts.append(str(getattr(p, "key", getattr(p, "name", getattr(p, "idx", p)))))
    return "/".join(parts)


def layers(tree: Any) -> dict[str, dict]:
    """``{name: layer}`` for every dict in ``tree`` that holds a ``kernel``;
    other leaves (e.g. ``log_std``) count as a one-leaf layer of their own."""
    found: dict[str, Any] = {}

    def visit(node, prefix):
        if isinstance(node, dict):
            if "kernel" in node:
                found[prefix] = node
                return
            for key in node:
                visit(node[key], f"{prefix}/{key}" if prefix else str(key))
        else:
            found[prefix] = {"value": node}

    visit(tree, "")
    return found


def _sq_norm(tree: Any) -> jax.Array:
    return sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree))


def weight_stats(params: Any, init_params: Any, grads: Any | None = None) -> dict[str, dict[str, jax.Array]]:
    """Per layer: ``mean_abs_weight`` (over all its entries), ``dist_from_init``
    (L2 norm of θ − θ0 over the layer) and ``grad_norm`` (when ``grads`` given)."""
    p_layers, i_layers = layers(params), layers(init_params)
    g_layers = layers(grads) if grads is not None else {}
    out = {}
    for name, layer in p_layers.items():
        leaves = jax.tree.leaves(layer)
        count = sum(x.size for x in leaves)
        stats = {
            "mean_abs_weight": sum(jnp.sum(jnp.abs(x)) for x in leaves) / count,
            "dist_from_init": jnp.sqrt(_sq_norm(jax.tree.map(jnp.subtract, layer, i_layers[name]))),
        }
        if grads is not None:
            stats["grad_norm"] = jnp.sqrt(_sq_norm(g_layers[name]))
        out[name] = stats
    return out


def mlp_activation_stats(
    params: Any, obs: jax.Array, activation: str, nets: tuple[str, ...] = ("actor", "critic")
) -> dict[str, dict[str, jax.Array]]:
    """Activation diagnostics of each hidden layer of the PPO actor and critic
    (networks from :mod:`metarl.agents.networks`) on a batch of observations."""
    from metarl.agents import networks

    out = {}
    for net in nets:
        _, hiddens = networks.apply_mlp(params[net], obs, activation)
        for i, h in enumerate(hiddens):
            out[f"{net}/hidden_{i}"] = activation_stats(h)
    return out


def flatten_stats(stats: dict[str, dict[str, jax.Array]]) -> dict[str, jax.Array]:
    """``{"actor/hidden_0/dormant_0.1": x, ...}`` for logging."""
    return {f"{layer}/{name}": value for layer, d in stats.items() for name, value in d.items()}
