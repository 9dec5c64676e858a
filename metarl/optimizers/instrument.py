"""Measure what an optimizer does inside the jitted PPO run.

``record_updates(tx)`` wraps any optax transformation; its state adds, per
parameter leaf, the running sum of ``mean |Δθ|`` over the steps taken since
the last :func:`take_magnitudes`. ``RecordingOptimizer`` does the same for a
learned optimizer (anything with ``.transform(meta_params)``), so PPO still
passes it its meta-parameters. ``make_instrumented_train`` runs PPO update
by update and reads the record after each one, so a whole lifetime yields
returns and update magnitudes per update without leaving ``jit``:

    train = make_instrumented_train(config, env, env_params, optimizer=opt)
    returns, magnitudes = train(key, None, meta_params)
    # magnitudes["actor"], magnitudes["critic"]: [num_updates] mean |Δθ| per step

PPO scales every update by ``1 - progress`` when ``anneal_lr`` is on, after
the optimizer; ``anneal_lr=True`` applies the same factor here, so the record
is the step that reaches the parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metarl.optimizers.features import leaf_paths

GROUPS = ("actor", "critic")


class RecordingState(NamedTuple):
    inner: Any  # the wrapped transformation's state
    abs_sum: Any  # per leaf: sum over steps of mean |update|
    steps: jax.Array  # int32 steps since the last read-out


def record_updates(tx: optax.GradientTransformation, anneal_lr: bool = False) -> optax.GradientTransformationExtraArgs:
    """``tx`` unchanged, plus a per-leaf record of mean |update| in its state."""
    inner = optax.with_extra_args_support(tx)

    def init_fn(params):
        zeros = jax.tree_util.tree_map(lambda _: jnp.zeros((), jnp.float32), params)
        return RecordingState(inner.init(params), zeros, jnp.zeros((), jnp.int32))

    def update_fn(grads, state, params=None, **extra):
        updates, inner_state = inner.update(grads, state.inner, params, **extra)
        progress = extra.get("progress")
        scale = 1.0 - jnp.asarray(progress, jnp.float32) if anneal_lr and progress is not None else 1.0
        abs_sum = jax.tree_util.tree_map(
            lambda s, u: s + scale * jnp.mean(jnp.abs(u)).astype(jnp.float32), state.abs_sum, updates
        )
        return updates, RecordingState(inner_state, abs_sum, state.steps + 1)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class RecordingOptimizer:
    """A learned optimizer whose transformations record their updates."""

    def __init__(self, optimizer: Any, anneal_lr: bool = False):
        if not hasattr(optimizer, "transform"):
            raise ValueError(f"RecordingOptimizer wraps a learned optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.anneal_lr = anneal_lr

    def init(self, key: jax.Array) -> Any:
        return self.optimizer.init(key)

    def transform(self, meta_params: Any) -> optax.GradientTransformationExtraArgs:
        return record_updates(self.optimizer.transform(meta_params), self.anneal_lr)


def recording(optimizer: Any, anneal_lr: bool = False) -> Any:
    """Wrap a plain optax transformation or a learned optimizer (``.transform``)."""
    if hasattr(optimizer, "transform"):
        return RecordingOptimizer(optimizer, anneal_lr)
    return record_updates(optimizer, anneal_lr)


def take_magnitudes(state: RecordingState) -> tuple[Any, RecordingState]:
    """(per-leaf mean |Δθ| per step since the last call, state with the record cleared)."""
    steps = jnp.maximum(state.steps, 1).astype(jnp.float32)
    per_leaf = jax.tree_util.tree_map(lambda s: s / steps, state.abs_sum)
    cleared = state._replace(abs_sum=jax.tree_util.tree_map(jnp.zeros_like, state.abs_sum), steps=jnp.zeros_like(state.steps))
    return per_leaf, cleared


def group_of(path: tuple[str, ...]) -> str:
    """``critic`` for the value network's leaves; everything else (incl. ``log_std``) is the actor."""
    return "critic" if "critic" in path else "actor"


def group_magnitudes(per_leaf: Any, params: Any) -> dict[str, jax.Array]:
    """Element-weighted mean of per-leaf magnitudes within each group (mean |Δθ| over the group)."""
    paths = leaf_paths(params)
    sizes = [int(np.prod(np.shape(p))) for p in jax.tree_util.tree_leaves(params)]
    values = jax.tree_util.tree_leaves(per_leaf)
    out = {}
    for group in GROUPS:
        members = [(v, n) for v, n, path in zip(values, sizes, paths) if group_of(path) == group]
        if members:
            total = sum(n for _, n in members)
            out[group] = sum(v * (n / total) for v, n in members)
    return out


def make_instrumented_train(
    config: Any, env: Any, env_params: Any, drift: Any = None, optimizer: Any = None
) -> Callable[..., tuple[jax.Array, dict[str, jax.Array]]]:
    """``train(key, objective_params=None, optimizer_params=None) -> (episode_return [U], {group: [U]})``.

    ``optimizer`` is an optax transformation or a learned optimizer (not
    ``None``: PPO's built-in Adam cannot be wrapped; pass ``optax.adam``).
    """
    from metarl.agents.ppo import PPO

    if optimizer is None:
        raise ValueError("make_instrumented_train needs an explicit optimizer (e.g. optax.adam(lr, eps=1e-5))")
    agent = PPO(config, env, env_params, drift=drift, optimizer=recording(optimizer, bool(config.anneal_lr)))

    @jax.jit
    def train(key: jax.Array, objective_params: Any = None, optimizer_params: Any = None):
        state = agent.init(key, objective_params, optimizer_params)
        state = state.replace(opt_state=take_magnitudes(state.opt_state)[1])

        def body(state, _):
            state, metrics = agent.update(state)
            per_leaf, cleared = take_magnitudes(state.opt_state)
            return state.replace(opt_state=cleared), (metrics["episode_return"], group_magnitudes(per_leaf, state.params))

        _, (returns, magnitudes) = jax.lax.scan(body, state, None, length=config.num_updates)
        return returns, magnitudes

    return train
