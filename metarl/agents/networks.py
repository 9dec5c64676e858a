"""Actor and critic MLPs as plain pytrees of arrays.

Parameters are nested dicts (``{"actor": {"hidden_0": {"kernel", "bias"}, ...,
"head": ...}, "critic": {...}, "log_std"?}``) so that a learned optimizer can
walk them leaf by leaf, and the forward pass can also return the hidden
activations needed for per-unit dormancy scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}

Params = dict


def _orthonormal_columns(gaussian: jax.Array) -> jax.Array:
    """Gram-Schmidt (twice, for float32 stability) on the columns of a tall matrix.

    Equals the Q of a QR decomposition with R's diagonal made positive, i.e.
    a Haar-random orthogonal matrix. Plain matmuls instead of LAPACK: jaxlib
    0.10's batched CPU QR (used when init is vmapped over seeds and ES
    candidates) can deadlock its 2-thread pool.
    """

    def add_column(k, q):
        v = gaussian[:, k]
        v = v - q @ (q.T @ v)  # columns not yet set are zero and project out nothing
        v = v - q @ (q.T @ v)
        return q.at[:, k].set(v / jnp.linalg.norm(v))

    return jax.lax.fori_loop(0, gaussian.shape[1], add_column, jnp.zeros_like(gaussian))


def _orthogonal(gaussian: jax.Array, n_in: int, n_out: int, gain: float) -> jax.Array:
    """Orthogonal ``(n_in, n_out)`` kernel from a tall Gaussian matrix, scaled by ``gain``."""
    q = _orthonormal_columns(gaussian)
    return gain * (q.T if n_in < n_out else q)


def _layer_shapes(n_in: int, hidden: Sequence[int], n_out: int) -> list[tuple[str, int, int]]:
    widths = [n_in, *hidden, n_out]
    names = [f"hidden_{i}" for i in range(len(hidden))] + ["head"]
    return [(name, a, b) for name, a, b in zip(names, widths[:-1], widths[1:])]


def init_mlp(key: jax.Array, n_in: int, hidden: Sequence[int], n_out: int, head_gain: float) -> Params:
    """Orthogonal init, gain sqrt(2) on hidden layers (PPO's usual choice), zero biases.

    All layers come from one Gaussian draw (one RNG call keeps compile time down).
    """
    shapes = _layer_shapes(n_in, hidden, n_out)
    square = [(max(a, b), min(a, b)) for _, a, b in shapes]
    flat = jax.random.normal(key, (sum(r * c for r, c in square),), jnp.float32)
    layers, start = {}, 0
    for (name, a, b), (rows, cols) in zip(shapes, square):
        gaussian = flat[start : start + rows * cols].reshape(rows, cols)
        start += rows * cols
        gain = head_gain if name == "head" else float(np.sqrt(2.0))
        layers[name] = {"kernel": _orthogonal(gaussian, a, b, gain), "bias": jnp.zeros((b,), jnp.float32)}
    return layers


@jax.custom_vjp
def dense(x: jax.Array, kernel: jax.Array, bias: jax.Array) -> jax.Array:
    """``x @ kernel + bias`` (``x``: ``[..., in]``) with a CPU-friendly gradient.

    Autodiff writes the kernel gradient as a dot contracting over the batch
    axis of ``x`` (``x^T g`` with ``x`` in its stored layout); XLA's CPU backend
    sends that layout to a generic kernel (traced: 24-31 us for a 64x64
    kernel vs 11-13 us for forward dots of the same size, 19 us for a 64x2 head). Transposing ``x`` explicitly (behind an optimisation barrier,
    so XLA does not fold the transpose back into the dot) keeps every dot of
    the backward pass in the fast library path. Same values as plain autodiff;
    reverse mode only (``jax.jvp`` through it raises, as for any ``custom_vjp``).
    """
    return x @ kernel + bias


def _dense_fwd(x, kernel, bias):
    return x @ kernel + bias, (x, kernel)


def _dense_bwd(residuals, g):
    x, kernel = residuals
    rows = x.reshape(-1, x.shape[-1])
    g_rows = g.reshape(-1, g.shape[-1])
    rows_t = jax.lax.optimization_barrier(rows.T)
    return g @ kernel.T, rows_t @ g_rows, jnp.sum(g_rows, axis=0)


dense.defvjp(_dense_fwd, _dense_bwd)


def apply_mlp(layers: Params, x: jax.Array, activation: str) -> tuple[jax.Array, list[jax.Array]]:
    """Forward pass; also returns each hidden layer's activations."""
    act = ACTIVATIONS[activation]
    hiddens = []
    n_hidden = len(layers) - 1
    for i in range(n_hidden):
        layer = layers[f"hidden_{i}"]
        x = act(dense(x, layer["kernel"], layer["bias"]))
        hiddens.append(x)
    return dense(x, layers["head"]["kernel"], layers["head"]["bias"]), hiddens


def init_actor_critic(
    key: jax.Array, obs_dim: int, action_dim: int, hidden: Sequence[int], continuous: bool
) -> Params:
    """Separate actor and critic MLPs (gains 0.01 / 1.0 on the heads).

    ``key`` is a pair of keys (actor, critic), e.g. ``jax.random.split(k)``.
    """
    k_actor, k_critic = key[0], key[1]
    params = {
        "actor": init_mlp(k_actor, obs_dim, hidden, action_dim, 0.01),
        "critic": init_mlp(k_critic, obs_dim, hidden, 1, 1.0),
    }
    if continuous:
        params["log_std"] = jnp.zeros((action_dim,), jnp.float32)
    return params


def dormancy_scores(
    params: Params,
    actor_hiddens: list[jax.Array],
    critic_hiddens: list[jax.Array],
    weight: jax.Array | None = None,
) -> Params:
    """ReDo scores mirroring ``params``: a ``(out,)`` vector per leaf.

    For a hidden layer, unit i scores ``E|h_i| / mean_k E|h_k|`` over the
    batch (0 = dormant, 1 = average); output layers and ``log_std`` get ones.
    ``weight`` (``[batch]``, optional) restricts E to the samples trained on.
    """

    def batch_mean(x: jax.Array) -> jax.Array:
        if weight is None:
            return jnp.mean(x, axis=0)
        total = jnp.sum(weight)
        return weight @ x / jnp.where(total > 0, total, 1.0)

    def layer_scores(layers: Params, hiddens: list[jax.Array]) -> Params:
        out = {}
        for name, layer in layers.items():
            width = layer["bias"].shape[-1]
            if name == "head":
                score = jnp.ones((width,), jnp.float32)
            else:
                mean_abs = batch_mean(jnp.abs(hiddens[int(name.split("_")[1])]))
                score = mean_abs / (jnp.mean(mean_abs) + 1e-8)
            out[name] = {"kernel": score, "bias": score}
        return out

    scores = {
        "actor": layer_scores(params["actor"], actor_hiddens),
        "critic": layer_scores(params["critic"], critic_hiddens),
    }
    if "log_std" in params:
        scores["log_std"] = jnp.ones_like(params["log_std"])
    return scores
