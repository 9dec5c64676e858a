"""Replay of earlier tasks' data for an on-policy learner, as behaviour cloning.

PPO cannot train its surrogate on old transitions (they are off-policy), so
replay here follows CLEAR's cloning terms: the buffer keeps observations of
earlier tasks together with the policy outputs and values the agent had
*when that task ended*, and every optimizer step adds the gradient of

    coef · [ KL(π_old(·|s) ‖ π_θ(·|s)) + value_coef · (V_θ(s) − V_old(s))² ]

(Gaussian policies: squared distance of the means instead of the KL) on a
minibatch drawn from the buffer. The buffer is reservoir-sampled (a uniform
sample of everything offered so far) and lives in the optimizer state of
:func:`replay_cloning`, so filling it at a task switch never recompiles.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metarl.agents import networks


class ReplayBuffer(NamedTuple):
    obs: jax.Array  # [capacity, obs_dim]
    policy_out: jax.Array  # [capacity, out_dim] logits or Gaussian means
    value: jax.Array  # [capacity]
    task: jax.Array  # [capacity] int32
    size: jax.Array  # () int32, filled entries
    seen: jax.Array  # () int32, entries ever offered (reservoir counter)


def buffer_init(capacity: int, obs_dim: int, out_dim: int) -> ReplayBuffer:
    if capacity < 1:
        raise ValueError(f"replay capacity must be >= 1, got {capacity}")
    return ReplayBuffer(
        obs=jnp.zeros((capacity, obs_dim), jnp.float32),
        policy_out=jnp.zeros((capacity, out_dim), jnp.float32),
        value=jnp.zeros((capacity,), jnp.float32),
        task=jnp.full((capacity,), -1, jnp.int32),
        size=jnp.zeros((), jnp.int32),
        seen=jnp.zeros((), jnp.int32),
    )


def buffer_add(buf: ReplayBuffer, key: jax.Array, obs, policy_out, value, task) -> ReplayBuffer:
    """Reservoir insertion of a batch (sequentially, so it is exact)."""
    capacity = buf.obs.shape[0]
    keys = jax.random.split(key, obs.shape[0])

    def insert(b, xs):
        o, po, v, t, k = xs
        n = b.seen
        slot = jnp.where(n < capacity, n, jax.random.randint(k, (), 0, jnp.maximum(n + 1, 1)))
        keep = slot < capacity
        slot = jnp.minimum(slot, capacity - 1)
        upd = lambda arr, x: arr.at[slot].set(jnp.where(keep, x, arr[slot]))  # noqa: E731
        return ReplayBuffer(
            upd(b.obs, o), upd(b.policy_out, po), upd(b.value, v), upd(b.task, t),
            jnp.minimum(b.size + 1, capacity), n + 1,
        ), None

    task = jnp.broadcast_to(jnp.asarray(task, jnp.int32), (obs.shape[0],))
    buf, _ = jax.lax.scan(insert, buf, (obs.astype(jnp.float32), policy_out, value, task, keys))
    return buf


def policy_targets(params: Any, obs: jax.Array, activation: str) -> tuple[jax.Array, jax.Array]:
    """What to store with ``obs``: actor outputs and critic values."""
    out, _ = networks.apply_mlp(params["actor"], obs, activation)
    value, _ = networks.apply_mlp(params["critic"], obs, activation)
    return out, value[:, 0]


def cloning_loss(params: Any, obs, target_out, target_value, weight, activation: str, continuous: bool, value_coef: float):
    """Weighted mean over the batch of the cloning terms (see module docstring)."""
    out, _ = networks.apply_mlp(params["actor"], obs, activation)
    value, _ = networks.apply_mlp(params["critic"], obs, activation)
    if continuous:
        policy_term = jnp.sum(jnp.square(out - target_out), axis=-1)
    else:
        old = jax.nn.log_softmax(target_out)
        policy_term = jnp.sum(jnp.exp(old) * (old - jax.nn.log_softmax(out)), axis=-1)
    per_sample = policy_term + value_coef * jnp.square(value[:, 0] - target_value)
    return jnp.sum(weight * per_sample) / jnp.maximum(jnp.sum(weight), 1.0)


class ReplayState(NamedTuple):
    buffer: ReplayBuffer
    coef: jax.Array
    step: jax.Array
    rng: jax.Array  # own key: minibatch i uses fold_in(rng, i), whatever key format the learner uses


def memory_gradient(state: ReplayState, params: Any, batch_size: int, activation: str, continuous: bool,
                    value_coef: float) -> Any:
    """Gradient of the cloning loss on the buffer minibatch of step ``state.step`` (zero while empty)."""
    buf = state.buffer
    idx = jax.random.randint(jax.random.fold_in(state.rng, state.step), (batch_size,), 0, jnp.maximum(buf.size, 1))
    weight = (buf.size > 0).astype(jnp.float32) * jnp.ones((batch_size,), jnp.float32)
    return jax.grad(cloning_loss)(
        params, buf.obs[idx], buf.policy_out[idx], buf.value[idx], weight, activation, continuous, value_coef
    )


def replay_cloning(
    capacity: int, obs_dim: int, out_dim: int, batch_size: int, coef: float, activation: str,
    continuous: bool, value_coef: float = 0.5, seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Adds the cloning gradient on ``batch_size`` buffer samples (none while empty)."""

    def init(params):
        return ReplayState(
            buffer_init(capacity, obs_dim, out_dim), jnp.asarray(coef, jnp.float32), jnp.zeros((), jnp.int32),
            jax.random.PRNGKey(seed),
        )

    def update(updates, state, params=None, **extra):
        grads = memory_gradient(state, params, batch_size, activation, continuous, value_coef)
        updates = jax.tree.map(lambda u, g: u + state.coef * g, updates, grads)
        return updates, state._replace(step=state.step + 1)

    return optax.GradientTransformationExtraArgs(init, update)


def _is_replay(x) -> bool:
    return isinstance(x, ReplayState)


def add_to_replay(opt_state: Any, key, obs, policy_out, value, task) -> Any:
    """Offer a batch to every :class:`ReplayState` buffer inside ``opt_state``."""
    return jax.tree.map(
        lambda s: s._replace(buffer=buffer_add(s.buffer, key, obs, policy_out, value, task)) if _is_replay(s) else s,
        opt_state,
        is_leaf=_is_replay,
    )
