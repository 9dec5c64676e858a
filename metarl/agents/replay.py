"""A replay buffer as a pytree ring buffer that lives on the device.

    buffer = replay.init(example_transition, capacity)   # zeros, nothing filled
    buffer = replay.add(buffer, batch)                  # leaves [n, ...], n <= capacity
    batch = replay.sample(buffer, key, batch_size)       # uniform over the filled slots

Pure functions of a :class:`ReplayBuffer` (a flax struct), so they run under
``jit`` and ``vmap`` (one buffer per seed) and a buffer is checkpointed like
any other state. The transition is any pytree of arrays; the buffer stores
each leaf with a leading ``capacity`` axis. When full, new transitions
overwrite the oldest ones; :func:`add_reservoir` instead keeps a uniform sample
of everything offered (reservoir sampling, for replay across a task stream).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBuffer:
    data: Any  # the transition pytree, each leaf [capacity, ...]
    position: jax.Array  # int32: the slot the next transition goes to
    size: jax.Array  # int32: filled slots, <= capacity

    @property
    def capacity(self) -> int:
        return jax.tree.leaves(self.data)[0].shape[0]


def init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for transitions shaped like ``example`` (one transition, no batch axis)."""
    if capacity <= 0:
        raise ValueError(f"replay capacity must be positive, got {capacity}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """``buffer`` with the ``n`` transitions of ``batch`` (leaves ``[n, ...]``) written after the newest.

    ``n`` must not exceed the capacity (two writes to one slot in a scatter have no defined order).
    """
    capacity = buffer.capacity
    n = jax.tree.leaves(batch)[0].shape[0]
    if n > capacity:
        raise ValueError(f"cannot add {n} transitions at once to a replay buffer of capacity {capacity}")
    slots = (buffer.position + jnp.arange(n, dtype=jnp.int32)) % capacity
    data = jax.tree.map(lambda stored, new: stored.at[slots].set(new.astype(stored.dtype)), buffer.data, batch)
    return ReplayBuffer(data, (buffer.position + n) % capacity, jnp.minimum(buffer.size + n, capacity))


def reservoir_slots(seen: jax.Array, n: int, capacity: int, key: jax.Array) -> jax.Array:
    """Where each of ``n`` new transitions goes after ``seen`` were offered (Vitter's algorithm R, one item at a
    time): item ``t = seen + i`` fills slot ``t`` while the buffer has room, else replaces the item in slot
    ``j ~ U{0..t}`` when ``j < capacity``; ``capacity`` means dropped. When two items of the batch draw one slot,
    only the later one writes it (as one at a time), so the earlier gets ``capacity`` too."""
    t = seen + jnp.arange(n, dtype=jnp.int32)
    j = jax.random.randint(key, (n,), 0, jnp.iinfo(jnp.int32).max) % (t + 1)  # U{0..t} (bias < t / 2^31)
    slots = jnp.where(t < capacity, t, jnp.where(j < capacity, j, capacity))
    later = jnp.triu(slots[:, None] == slots[None, :], k=1)  # [i, k]: item k > i writes the same slot
    return jnp.where(jnp.any(later, axis=1) & (slots < capacity), capacity, slots)


def add_reservoir(buffer: ReplayBuffer, batch: Any, key: jax.Array) -> ReplayBuffer:
    """``buffer`` after offering the ``n`` transitions of ``batch`` to a reservoir: the filled slots are always a
    uniform sample (without replacement) of every transition offered so far. A reservoir's ``position`` counts the
    transitions offered (a ring position means nothing there), so a reservoir must only ever be written by this."""
    capacity = buffer.capacity
    n = jax.tree.leaves(batch)[0].shape[0]
    slots = reservoir_slots(buffer.position, n, capacity, key)
    data = jax.tree.map(lambda stored, new: stored.at[slots].set(new.astype(stored.dtype), mode="drop"),
                        buffer.data, batch)
    seen = buffer.position + n
    return ReplayBuffer(data, seen, jnp.minimum(seen, capacity).astype(jnp.int32))


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """``batch_size`` transitions drawn uniformly, with replacement, among the filled slots.

    An empty buffer yields copies of slot 0 (zeros); callers sample only after adding.
    """
    slots = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda stored: stored[slots], buffer.data)
