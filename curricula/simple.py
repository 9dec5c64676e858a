"""Non-adaptive teachers: domain randomisation, a fixed task, a fixed sequence.

Also :class:`TaskSpaceTeacher`, the small base that remembers the TaskSpace
given to ``init`` (the protocol's ``sample`` does not receive it; the space is
static configuration, never part of the pytree state).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from curricula.base import Feedback
from envs.task_space import index_tasks


class TaskSpaceTeacher:
    """Holds the TaskSpace a teacher samples from (given to the constructor or to ``init``)."""

    def __init__(self, task_space: Any = None):
        self._task_space = task_space

    @property
    def task_space(self) -> Any:
        if self._task_space is None:
            raise ValueError(f"{type(self).__name__}: call init(key, task_space) before sampling")
        return self._task_space

    def _set_task_space(self, task_space: Any) -> None:
        if task_space is not None:
            self._task_space = task_space
        elif self._task_space is None:
            raise ValueError(f"{type(self).__name__}.init needs a task_space")


@struct.dataclass
class EmptyState:
    """Stateless teachers still return a (trivial) pytree state."""

    step: jax.Array  # [] int32, number of sample calls


class DomainRandomization(TaskSpaceTeacher):
    """Uniform (or the env's structured sampler) over the TaskSpace."""

    def init(self, key: jax.Array, task_space: Any = None) -> EmptyState:
        self._set_task_space(task_space)
        return EmptyState(jnp.zeros((), jnp.int32))

    def sample(self, state: EmptyState, key: jax.Array, n: int) -> tuple[EmptyState, Any]:
        return state.replace(step=state.step + 1), self.task_space.sample_batch(key, n)

    def update(self, state: EmptyState, tasks: Any, feedback: Feedback) -> EmptyState:
        return state


class FixedTask(TaskSpaceTeacher):
    """Always the same task (the TaskSpace default unless one is given)."""

    def __init__(self, task: Any = None, task_space: Any = None):
        super().__init__(task_space)
        self.task = task

    def init(self, key: jax.Array, task_space: Any = None) -> EmptyState:
        self._set_task_space(task_space)
        return EmptyState(jnp.zeros((), jnp.int32))

    def sample(self, state: EmptyState, key: jax.Array, n: int) -> tuple[EmptyState, Any]:
        task = self.task_space.default if self.task is None else self.task
        tasks = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (n,) + jnp.shape(x)), task)
        return state.replace(step=state.step + 1), tasks

    def update(self, state: EmptyState, tasks: Any, feedback: Feedback) -> EmptyState:
        return state


class FixedSequence(TaskSpaceTeacher):
    """A given list of tasks, each for ``period`` sample calls (then the last, or cycling).

    ``tasks`` is a batched params pytree (``envs.stack_tasks``) with leading
    axis = sequence length.
    """

    def __init__(self, tasks: Any, period: int, cycle: bool = False, task_space: Any = None):
        super().__init__(task_space)
        if period < 1:
            raise ValueError(f"FixedSequence period must be >= 1, got {period}")
        lengths = {jnp.shape(x)[0] for x in jax.tree.leaves(tasks)}
        if len(lengths) != 1:
            raise ValueError(f"FixedSequence tasks need one common leading axis, got lengths {sorted(lengths)}")
        self.tasks = tasks
        self.length = lengths.pop()
        self.period = period
        self.cycle = cycle

    def init(self, key: jax.Array, task_space: Any = None) -> EmptyState:
        if task_space is not None:
            self._set_task_space(task_space)
        return EmptyState(jnp.zeros((), jnp.int32))

    def current_index(self, state: EmptyState) -> jax.Array:
        stage = state.step // self.period
        return stage % self.length if self.cycle else jnp.minimum(stage, self.length - 1)

    def sample(self, state: EmptyState, key: jax.Array, n: int) -> tuple[EmptyState, Any]:
        idx = jnp.full((n,), self.current_index(state))
        return state.replace(step=state.step + 1), index_tasks(self.tasks, idx)

    def update(self, state: EmptyState, tasks: Any, feedback: Feedback) -> EmptyState:
        return state
