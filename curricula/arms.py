"""Arms of a bandit teacher: a discrete set of tasks, or bins of a TaskSpace.

An arm set maps arm indices to tasks (``tasks_for``) and tasks back to arm
indices (``arm_of``), so feedback about any batch of tasks can be credited to
the arms that produced them without storing indices in the tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from envs.task_space import index_tasks


def _flat(task: Any) -> jax.Array:
    return jnp.concatenate([jnp.ravel(jnp.asarray(x)).astype(jnp.float32) for x in jax.tree.leaves(task)])


class TaskSetArms:
    """One arm per task of a batched params pytree (``envs.stack_tasks([...])``)."""

    def __init__(self, tasks: Any):
        sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(tasks)}
        if len(sizes) != 1 or None in sizes:
            raise ValueError("TaskSetArms needs a batched params pytree with one leading axis (envs.stack_tasks)")
        self.tasks = tasks
        self.num_arms = sizes.pop()
        self._vectors = jax.vmap(_flat)(tasks)

    def bind(self, task_space: Any) -> "TaskSetArms":
        return self

    def tasks_for(self, key: jax.Array, arms: jax.Array) -> Any:
        return index_tasks(self.tasks, arms)

    def arm_of(self, tasks: Any) -> jax.Array:
        """Index of the nearest task of the set (exact match for tasks it produced)."""
        vectors = jax.vmap(_flat)(tasks)
        d2 = jnp.sum((vectors[:, None, :] - self._vectors[None]) ** 2, axis=-1)
        return jnp.argmin(d2, axis=1).astype(jnp.int32)


class BinnedArms:
    """A grid over chosen entries of the TaskSpace vector; one arm per cell.

    ``bins`` is an int (same for every binned entry) or one int per entry of
    ``dims`` (indices into ``task_space.to_vector``; default: all entries).
    A task for arm ``j`` is the TaskSpace's own sample with the binned entries
    redrawn uniformly inside cell ``j``. Integer entries are rounded by
    ``from_vector``, so ``arm_of`` recomputes the cell from the task actually
    played.
    """

    def __init__(self, bins: int | Sequence[int], dims: Sequence[int] | None = None, task_space: Any = None):
        self._bins_arg = bins
        self._dims_arg = None if dims is None else tuple(int(d) for d in dims)
        self.task_space = None
        if task_space is not None:
            self.bind(task_space)

    def bind(self, task_space: Any) -> "BinnedArms":
        dims = tuple(range(task_space.dim)) if self._dims_arg is None else self._dims_arg
        if not dims or any(d < 0 or d >= task_space.dim for d in dims):
            raise ValueError(f"BinnedArms dims {dims} must index the task vector of length {task_space.dim}")
        bins = (self._bins_arg,) * len(dims) if isinstance(self._bins_arg, int) else tuple(self._bins_arg)
        if len(bins) != len(dims) or any(int(b) < 1 for b in bins):
            raise ValueError(f"BinnedArms needs one positive bin count per binned dim, got {bins} for dims {dims}")
        self.task_space = task_space
        self.dims = np.asarray(dims)
        self.bins = np.asarray(bins, np.int32)
        self.num_arms = int(math.prod(bins))
        self._low = np.asarray(task_space.low)[self.dims]
        self._high = np.asarray(task_space.high)[self.dims]
        return self

    def _require_bound(self):
        if self.task_space is None:
            raise ValueError("BinnedArms: bind(task_space) first (the teacher's init does it)")

    def cell_of_arm(self, arms: jax.Array) -> jax.Array:
        """``[n, len(dims)]`` grid coordinates of arm indices."""
        return jnp.stack(jnp.unravel_index(arms, tuple(int(b) for b in self.bins)), axis=-1)

    def tasks_for(self, key: jax.Array, arms: jax.Array) -> Any:
        self._require_bound()
        key_base, key_cell = jax.random.split(key)
        base = self.task_space.sample_batch(key_base, arms.shape[0])
        vectors = jax.vmap(self.task_space.to_vector)(base)
        unit = (self.cell_of_arm(arms) + jax.random.uniform(key_cell, (arms.shape[0], len(self.dims)))) / self.bins
        values = self._low + unit * (self._high - self._low)
        vectors = vectors.at[:, self.dims].set(values)
        return jax.vmap(self.task_space.from_vector)(vectors, base)

    def arm_of(self, tasks: Any) -> jax.Array:
        self._require_bound()
        vectors = jax.vmap(self.task_space.to_vector)(tasks)[:, self.dims]
        span = np.where(self._high > self._low, self._high - self._low, 1.0)
        cell = jnp.clip(jnp.floor((vectors - self._low) / span * self.bins), 0, self.bins - 1).astype(jnp.int32)
        return jnp.ravel_multi_index(tuple(cell.T), tuple(int(b) for b in self.bins), mode="clip").astype(jnp.int32)
