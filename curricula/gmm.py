"""Full-covariance Gaussian mixtures fitted by EM inside ``jit``.

Shapes are static: a mixture has ``max_components`` slots and the first
``k`` are active (``k`` may be traced), inactive slots have log-weight
``-inf``. Data rows carry a mask, so a fixed-size ring buffer can be fitted
directly. One k-means++ initialisation and a fixed number of EM iterations
(the teachDeepRL ALP-GMM uses one sklearn initialisation, ``nb_em_init=1``;
sklearn's ``reg_covar`` 1e-6 is the default ridge).

``select`` fits every ``k`` in a static tuple (vmapped) and keeps the one
with the lowest AIC (``2p - 2 log L``) or BIC (``p log n - 2 log L``), with
``p = k·d + k·d(d+1)/2 + k - 1`` free parameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import struct

CRITERIA = ("aic", "bic")


@struct.dataclass
class GMM:
    means: jax.Array  # [K, D]
    covs: jax.Array  # [K, D, D]
    log_weights: jax.Array  # [K], -inf for inactive components

    @property
    def active(self) -> jax.Array:
        return jnp.isfinite(self.log_weights)


def cholesky_unrolled(a: jax.Array) -> jax.Array:
    """Lower Cholesky factor of ``[..., D, D]`` matrices, unrolled over the (small, static) ``D``.

    Elementwise ops only: XLA:CPU's batched ``cholesky``/``solve_triangular``
    made one ALP-GMM refit take ~10 s; this takes milliseconds.
    """
    d = a.shape[-1]
    rows: list[list[jax.Array]] = [[None] * d for _ in range(d)]  # type: ignore[list-item]
    for i in range(d):
        for j in range(i + 1):
            acc = a[..., i, j] - sum((rows[i][k] * rows[j][k] for k in range(j)), jnp.zeros_like(a[..., i, j]))
            if i == j:
                rows[i][j] = jnp.sqrt(jnp.maximum(acc, 1e-30))
            else:
                rows[i][j] = acc / rows[j][j]
    zero = jnp.zeros_like(a[..., 0, 0])
    return jnp.stack([jnp.stack([rows[i][j] if j <= i else zero for j in range(d)], -1) for i in range(d)], -2)


def forward_solve_unrolled(chol: jax.Array, b: jax.Array) -> jax.Array:
    """``L^{-1} b`` for lower-triangular ``chol`` ``[..., D, D]`` and ``b`` ``[..., D, n]``."""
    d = chol.shape[-1]
    out: list[jax.Array] = []
    for i in range(d):
        acc = b[..., i, :] - sum((chol[..., i, k, None] * out[k] for k in range(i)), jnp.zeros_like(b[..., i, :]))
        out.append(acc / chol[..., i, i, None])
    return jnp.stack(out, axis=-2)


def component_log_probs(x: jax.Array, gmm: GMM) -> jax.Array:
    """``[n, K]``: ``log w_k + log N(x_i | μ_k, Σ_k)``."""
    d = x.shape[-1]
    chol = cholesky_unrolled(gmm.covs)  # [K, D, D]
    diff = x[None, :, :] - gmm.means[:, None, :]  # [K, n, D]
    solved = forward_solve_unrolled(chol, jnp.swapaxes(diff, 1, 2))  # [K, D, n]
    maha = jnp.sum(solved**2, axis=1)  # [K, n]
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol, axis1=1, axis2=2)), axis=1)  # [K]
    log_norm = -0.5 * (d * jnp.log(2 * jnp.pi) + log_det)
    return (gmm.log_weights[:, None] + log_norm[:, None] - 0.5 * maha).T


def log_likelihood(x: jax.Array, mask: jax.Array, gmm: GMM) -> jax.Array:
    per_point = jax.scipy.special.logsumexp(component_log_probs(x, gmm), axis=1)
    return jnp.sum(jnp.where(mask, per_point, 0.0))


def kmeans_pp_means(key: jax.Array, x: jax.Array, mask: jax.Array, max_components: int) -> jax.Array:
    """k-means++ seeding among the masked rows (D² sampling)."""
    n = x.shape[0]
    keys = jax.random.split(key, max_components)
    first = jax.random.choice(keys[0], n, p=mask / jnp.sum(mask))
    centers = jnp.zeros((max_components, x.shape[1]), x.dtype).at[0].set(x[first])

    def add(j, centers):
        d2 = jnp.sum((x[:, None, :] - centers[None]) ** 2, axis=-1)  # [n, K]
        d2 = jnp.min(jnp.where(jnp.arange(max_components)[None] < j, d2, jnp.inf), axis=1)
        w = jnp.where(mask, d2, 0.0)
        p = jnp.where(jnp.sum(w) > 0, w / jnp.maximum(jnp.sum(w), 1e-30), mask / jnp.sum(mask))
        return centers.at[j].set(x[jax.random.choice(keys[j], n, p=p)])

    return jax.lax.fori_loop(1, max_components, add, centers)


def fit(
    key: jax.Array,
    x: jax.Array,
    mask: jax.Array,
    k: jax.Array | int,
    max_components: int,
    n_iter: int = 100,
    reg_covar: float = 1e-6,
) -> tuple[GMM, jax.Array]:
    """EM for a ``k``-component mixture (``k <= max_components``); returns (gmm, log-likelihood)."""
    x = jnp.asarray(x, jnp.float32)
    mask = jnp.asarray(mask, bool)
    n_valid = jnp.maximum(jnp.sum(mask), 1)
    d = x.shape[1]
    active = jnp.arange(max_components) < k
    eye = jnp.eye(d, dtype=jnp.float32)
    mean_all = jnp.sum(jnp.where(mask[:, None], x, 0.0), axis=0) / n_valid
    var_all = jnp.sum(jnp.where(mask[:, None], (x - mean_all) ** 2, 0.0), axis=0) / n_valid
    init_cov = jnp.diag(var_all) + reg_covar * eye
    gmm = GMM(
        means=kmeans_pp_means(key, x, mask, max_components),
        covs=jnp.broadcast_to(init_cov, (max_components, d, d)),
        log_weights=jnp.where(active, -jnp.log(jnp.asarray(k, jnp.float32)), -jnp.inf),
    )

    def em_step(_, gmm):
        log_r = component_log_probs(x, gmm)
        resp = jnp.exp(log_r - jax.scipy.special.logsumexp(log_r, axis=1, keepdims=True))
        resp = jnp.where(mask[:, None] & active[None], resp, 0.0)  # [n, K]
        nk = jnp.sum(resp, axis=0)  # [K]
        alive = active & (nk > 1e-6)  # an emptied component keeps its old parameters
        safe = jnp.maximum(nk, 1e-6)
        means = resp.T @ x / safe[:, None]
        diff = x[None] - means[:, None]  # [K, n, D]
        covs = jnp.einsum("nk,knd,kne->kde", resp, diff, diff) / safe[:, None, None] + reg_covar * eye
        return GMM(
            means=jnp.where(alive[:, None], means, gmm.means),
            covs=jnp.where(alive[:, None, None], covs, gmm.covs),
            log_weights=jnp.where(active, jnp.log(jnp.maximum(nk, 1e-12) / n_valid), -jnp.inf),
        )

    gmm = jax.lax.fori_loop(0, n_iter, em_step, gmm)
    return gmm, log_likelihood(x, mask, gmm)


def n_parameters(k: jax.Array | int, d: int) -> jax.Array:
    return jnp.asarray(k * d + k * d * (d + 1) / 2 + k - 1, jnp.float32)


def information_criterion(log_lik, k, d: int, n, criterion: str) -> jax.Array:
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    p = n_parameters(k, d)
    penalty = 2.0 * p if criterion == "aic" else p * jnp.log(jnp.asarray(n, jnp.float32))
    return penalty - 2.0 * log_lik


def select(
    key: jax.Array,
    x: jax.Array,
    mask: jax.Array,
    ks: Sequence[int] = tuple(range(2, 11)),
    criterion: str = "aic",
    n_iter: int = 100,
    reg_covar: float = 1e-6,
) -> tuple[GMM, jax.Array]:
    """Fit every ``k`` in ``ks`` and keep the best by ``criterion``; returns (gmm, per-k criterion)."""
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be a non-empty tuple of positive ints, got {ks}")
    max_components = max(ks)
    k_arr = jnp.asarray(ks, jnp.int32)
    keys = jax.random.split(key, len(ks))
    gmms, lls = jax.vmap(lambda kk, k: fit(kk, x, mask, k, max_components, n_iter, reg_covar))(keys, k_arr)
    scores = information_criterion(lls, k_arr, x.shape[1], jnp.sum(mask), criterion)
    scores = jnp.where(jnp.isfinite(scores), scores, jnp.inf)
    best = jnp.argmin(scores)
    return jax.tree.map(lambda a: a[best], gmms), scores
