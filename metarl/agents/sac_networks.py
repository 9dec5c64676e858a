"""SAC's networks: a tanh-squashed Gaussian actor and twin Q critics, as plain pytrees.

Parameters are nested dicts like PPO's (:mod:`metarl.agents.networks`):
``{"hidden_0": {"kernel", "bias"}, "norm_0"?: {"scale", "offset"}, ..., "head"}``.
The two critics are one pytree with a leading axis of 2 and run as one
vmapped (batched) matmul per layer. Actions inside SAC live in ``[-1, 1]``
(the tanh range); :func:`to_env_action` maps them onto the env's box.

**Task heads** (``heads = H > 0``, Continual World's multi-head SAC): the
observation ends with an H-way one-hot task id. It is not a network input;
it selects which of H output heads (one wide linear layer, read per task)
gives the actor's mean/log-std and each critic's Q. ``heads = 0``: one head,
the whole observation is the input.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from metarl.agents import networks
from metarl.agents.env_spec import EnvSpec

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0  # the actor's log-std range (a smooth tanh squash into it)
LOG_2PI = float(np.log(2.0 * np.pi))
LOG_2 = float(np.log(2.0))
NUM_CRITICS = 2
_LN_EPS = 1e-5

Params = dict


def init_mlp(key: jax.Array, n_in: int, hidden: Sequence[int], n_out: int, head_gain: float, layer_norm: bool) -> Params:
    """PPO's orthogonal MLP init, plus identity LayerNorms after each hidden layer when asked."""
    layers = networks.init_mlp(key, n_in, hidden, n_out, head_gain)
    if layer_norm:
        for i, width in enumerate(hidden):
            layers[f"norm_{i}"] = {"scale": jnp.ones((width,), jnp.float32), "offset": jnp.zeros((width,), jnp.float32)}
    return layers


def _layer_norm(x: jax.Array, norm: Params) -> jax.Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + _LN_EPS) * norm["scale"] + norm["offset"]


def split_task(obs: jax.Array, heads: int) -> tuple[jax.Array, jax.Array | None]:
    """``(network input, one-hot task id or None)`` of an observation (see the module docstring)."""
    if heads <= 0:
        return obs, None
    return obs[..., :-heads], obs[..., -heads:]


def hidden_activations(layers: Params, x: jax.Array, activation: str) -> list[jax.Array]:
    """Each hidden layer's output (after its LayerNorm and activation): what ReDo and CBP score units by."""
    act = networks.ACTIVATIONS[activation]
    hiddens = []
    i = 0
    while f"hidden_{i}" in layers:
        layer = layers[f"hidden_{i}"]
        x = networks.dense(x, layer["kernel"], layer["bias"])
        if f"norm_{i}" in layers:
            x = _layer_norm(x, layers[f"norm_{i}"])
        x = act(x)
        hiddens.append(x)
        i += 1
    return hiddens


def apply_mlp(layers: Params, x: jax.Array, activation: str, task: jax.Array | None = None) -> jax.Array:
    """Dense -> (LayerNorm) -> activation per hidden layer, then the linear head.

    ``task`` (a one-hot ``[..., H]``): the head is H blocks of outputs; the task's block is returned."""
    hiddens = hidden_activations(layers, x, activation)
    x = hiddens[-1] if hiddens else x
    out = networks.dense(x, layers["head"]["kernel"], layers["head"]["bias"])
    if task is None:
        return out
    blocks = out.reshape(out.shape[:-1] + (task.shape[-1], -1))
    return jnp.einsum("...hn,...h->...n", blocks, task)


# --- actor: tanh-squashed diagonal Gaussian ----------------------------------------------------------
def init_actor(key: jax.Array, obs_dim: int, action_dim: int, hidden: Sequence[int], layer_norm: bool,
               heads: int = 0) -> Params:
    """Head of ``2 * action_dim`` (mean, raw log-std) per task head, small gain: the first policy is near tanh(0)
    with std e^-1.5. ``obs_dim`` counts the one-hot of ``heads``."""
    return init_mlp(key, obs_dim - max(heads, 0), hidden, 2 * action_dim * max(heads, 1), 0.01, layer_norm)


def actor_mean_log_std(actor: Params, obs: jax.Array, activation: str, heads: int = 0) -> tuple[jax.Array, jax.Array]:
    """Pre-tanh mean and log-std; the log-std is squashed smoothly into [LOG_STD_MIN, LOG_STD_MAX]."""
    x, task = split_task(obs, heads)
    out = apply_mlp(actor, x, activation, task)
    mean, raw = jnp.split(out, 2, axis=-1)
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(raw) + 1.0)
    return mean, log_std


def log1m_tanh_sq(u: jax.Array) -> jax.Array:
    """``log(1 - tanh(u)^2)`` without cancellation: ``2 (log 2 - u - softplus(-2u))``."""
    return 2.0 * (LOG_2 - u - jax.nn.softplus(-2.0 * u))


def tanh_gaussian_log_prob(u: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """Log-density of ``a = tanh(u)`` for ``u ~ N(mean, exp(log_std)^2)``, summed over action entries.

    Change of variables: ``log p(a) = log N(u) - sum log(1 - tanh(u)^2)`` (paper, appendix C).
    """
    z = (u - mean) * jnp.exp(-log_std)
    gaussian = -0.5 * jnp.square(z) - log_std - 0.5 * LOG_2PI
    return jnp.sum(gaussian - log1m_tanh_sq(u), axis=-1)


def sample_action(mean: jax.Array, log_std: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Reparametrised ``(tanh(mean + std * noise), its log-prob)`` from standard normal ``noise``."""
    u = mean + jnp.exp(log_std) * noise
    return jnp.tanh(u), tanh_gaussian_log_prob(u, mean, log_std)


# --- twin critics ------------------------------------------------------------------------------------
def init_critics(key: jax.Array, obs_dim: int, action_dim: int, hidden: Sequence[int], layer_norm: bool,
                 heads: int = 0) -> Params:
    """Two independent Q(s, a) MLPs (one output per task head) stacked on a leading axis of 2."""
    keys = jax.random.split(key, NUM_CRITICS)
    n_in = obs_dim - max(heads, 0) + action_dim
    return jax.vmap(lambda k: init_mlp(k, n_in, hidden, max(heads, 1), 1.0, layer_norm))(keys)


def critic_values(critics: Params, obs: jax.Array, action: jax.Array, activation: str, heads: int = 0) -> jax.Array:
    """``[2, batch]`` Q-values of both critics."""
    obs, task = split_task(obs, heads)
    x = jnp.concatenate([obs, action], axis=-1)
    return jax.vmap(lambda p: apply_mlp(p, x, activation, task)[..., 0])(critics)


def unit_activations(params: Params, obs: jax.Array, action: jax.Array, activation: str, heads: int = 0) -> dict:
    """``{"actor": [[B, width_i]], "critic": [[2, B, width_i]]}``: the hidden outputs of the actor on ``obs`` and of
    both critics on ``(obs, action)`` (the task one-hot, never an input, left out)."""
    x, _ = split_task(obs, heads)
    critic_in = jnp.concatenate([x, action], axis=-1)
    return {"actor": hidden_activations(params["actor"], x, activation),
            "critic": jax.vmap(lambda p: hidden_activations(p, critic_in, activation))(params["critic"])}


# --- env actions -------------------------------------------------------------------------------------
def to_env_action(spec: EnvSpec, action: jax.Array) -> jax.Array:
    """``[n, action_dim]`` actions in [-1, 1] onto the env's box (entries with an infinite bound pass as they are)."""
    low, high = spec.action_low, spec.action_high
    finite = np.isfinite(low) & np.isfinite(high)
    centre = np.where(finite, (low + high) / 2.0, 0.0).astype(np.float32)
    half = np.where(finite, (high - low) / 2.0, 1.0).astype(np.float32)
    return (centre + half * action).reshape((action.shape[0],) + spec.action_shape)
