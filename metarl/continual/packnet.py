"""PackNet (Mallya & Lazebnik 2018) for an MLP actor, as Continual World applies it to SAC's actor.

Every hidden-layer kernel entry has an *owner*: ``FREE`` (-1) or the stream
position of the task that claimed it. While a task trains, only free entries
change (the earlier tasks' entries are frozen). At the end of the task's
training the free entries are pruned per layer by magnitude: the largest
``keep_fraction`` of them are claimed by the task, the rest are zeroed and
stay free for later tasks; then the task *retrains* with only its claimed
entries changing. ``keep_fraction = 1 / (tasks left, this one included)``
splits the remaining capacity evenly (Continual World's rule), so the last
task claims everything left.

Evaluating the task at position ``i`` uses the entries owned by positions
``<= i`` (later tasks' entries are zeroed); the task being trained also sees
the free entries it is training. Biases and LayerNorm parameters are not
pruned: they train during the first task only and are frozen after it.
Output heads are per task (multi-head SAC), so they always train.

All functions are pure and jit-able; ``owners`` is a pytree shaped like the
actor with int32 leaves (-1 everywhere except on claimed kernel entries).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

FREE = -1


def _kind(path: tuple) -> str:
    """``"kernel"`` (prunable), ``"head"`` (per-task output head) or ``"shared"`` (biases, norms)."""
    names = [getattr(p, "key", str(p)) for p in path]
    if names[0] == "head":
        return "head"
    return "kernel" if names[0].startswith("hidden_") and names[-1] == "kernel" else "shared"


def init_owners(actor: Any) -> Any:
    """Every entry free."""
    return jax.tree.map(lambda x: jnp.full(x.shape, FREE, jnp.int32), actor)


def trainable(actor: Any, owners: Any, position: jax.Array, retraining: jax.Array) -> Any:
    """Boolean masks of the entries that may change now: free kernel entries while a task trains, the task's own
    entries while it retrains; biases and norms during the first task only; heads always."""
    first = position == 0

    def mask(path, owner):
        kind = _kind(path)
        if kind == "head":
            return jnp.ones(owner.shape, bool)
        if kind == "shared":
            return jnp.broadcast_to(first, owner.shape)
        return jnp.where(retraining, owner == position, owner == FREE)

    return jax.tree_util.tree_map_with_path(mask, owners)


def keep_fraction(position: jax.Array, n_positions: int) -> jax.Array:
    """The share of the free entries the task at ``position`` claims: ``1 / (n_positions - position)``."""
    return 1.0 / (n_positions - jnp.asarray(position, jnp.float32))


def prune(actor: Any, owners: Any, position: jax.Array, fraction: jax.Array) -> tuple[Any, Any]:
    """Claim the largest-magnitude ``fraction`` of each kernel's free entries for ``position``; zero the others.

    ``ceil(fraction * free)`` entries are kept per layer (ties at the threshold all kept)."""

    def one(path, w, owner):
        if _kind(path) != "kernel":
            return w, owner
        free = owner == FREE
        magnitude = jnp.where(free, jnp.abs(w), -jnp.inf).ravel()
        count = jnp.ceil(fraction * jnp.sum(free)).astype(jnp.int32)
        ordered = jnp.sort(magnitude)[::-1]
        threshold = ordered[jnp.clip(count - 1, 0, ordered.size - 1)]
        keep = free & (jnp.abs(w) >= threshold) & (count > 0)
        pruned = free & ~keep
        return jnp.where(pruned, 0.0, w), jnp.where(keep, jnp.asarray(position, jnp.int32), owner)

    pairs = jax.tree_util.tree_map_with_path(one, actor, owners)
    is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
    return (jax.tree.map(lambda p: p[0], pairs, is_leaf=is_pair), jax.tree.map(lambda p: p[1], pairs, is_leaf=is_pair))


def params_for(actor: Any, owners: Any, position: jax.Array, current: jax.Array) -> Any:
    """The actor the task at ``position`` runs with while the task at ``current`` trains (see module docstring)."""

    def one(path, w, owner):
        if _kind(path) != "kernel":
            return w
        claimed = (owner != FREE) & (owner <= position)
        training = (owner == FREE) & (position >= current)
        return jnp.where(claimed | training, w, 0.0)

    return jax.tree_util.tree_map_with_path(one, actor, owners)


class MaskState(NamedTuple):
    mask: Any  # bool pytree: which entries an update may change


def masked_updates() -> optax.GradientTransformation:
    """Zero the update of every entry whose mask is False (chain it after the optimizer: frozen entries never move,
    whatever the optimizer's moments hold). The mask starts all True; :func:`with_mask` replaces it."""

    def init(params):
        return MaskState(jax.tree.map(lambda p: jnp.ones(jnp.shape(p), bool), params))

    def update(updates, state, params=None):
        return jax.tree.map(lambda u, m: jnp.where(m, u, jnp.zeros_like(u)), updates, state.mask), state

    return optax.GradientTransformation(init, update)


def with_mask(opt_state: tuple, mask: Any) -> tuple:
    """The state of ``optax.chain(<optimizer>, masked_updates())`` with ``mask`` in place."""
    return (*opt_state[:-1], MaskState(mask))
