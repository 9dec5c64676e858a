"""Held-out tasks of a benchmark and the teacher that trains on the rest.

* :func:`goal_split` — the fixed train/test split of a finite goal set (numpy, by seed);
* :func:`task_split` — ``(train tasks or None, test tasks)`` of a benchmark: ``None`` trains on the
  env's own sampler (domain randomisation);
* :class:`TaskSet` — a teacher (the ``curricula`` API) drawing uniformly from a fixed batch of tasks.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from curricula.base import Feedback
from curricula.simple import EmptyState
from envs.task_space import index_tasks
from metarl.in_context import benchmarks
from metarl.in_context.benchmarks import InContextBenchmark


def goal_split(num_goals: int, test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices into ``num_goals`` goals, each sorted: ``test`` of them held out by ``seed``."""
    if not 0 < test < num_goals:
        raise ValueError(f"a goal split needs 0 < test goals < {num_goals}, got {test}")
    order = np.random.default_rng(seed).permutation(num_goals)
    return np.sort(order[test:]), np.sort(order[:test])


def num_goals(env: Any) -> int:
    return int(np.asarray(jax.tree.leaves(env.all_goals())[0]).shape[0])


def check_split(bench: InContextBenchmark, env: Any) -> None:
    """The benchmark's held-out tasks exist on ``env`` (no compute)."""
    if bench.held_out == "goals":
        if not hasattr(env, "all_goals"):
            raise ValueError(f"{bench.id}: env {bench.env} has no finite goal set (all_goals) to split")
        goal_split(num_goals(env), bench.test_tasks, bench.split_seed)


def task_split(bench: InContextBenchmark, env: Any, test_tasks: int) -> tuple[Any | None, Any]:
    """``(train, test)`` batched task params; ``train`` is ``None`` for the env's own sampler.

    ``test_tasks``: the number of sampled held-out tasks (a goal split always holds out the benchmark's; a
    Meta-World benchmark's test set is thinned to ``test_tasks`` evenly spaced ones, every class kept in order).
    """
    if bench.held_out == "meta-world":
        mw = benchmarks.meta_world(bench)
        train, test = mw.train_tasks(), mw.test_tasks()
        return train, evenly(test, int(test_tasks) if test_tasks else bench.test_tasks)
    if bench.held_out == "goals":
        goals = env.all_goals()
        train, test = goal_split(num_goals(env), bench.test_tasks, bench.split_seed)
        take = lambda index: jax.tree.map(lambda x: np.asarray(x)[index], goals)  # noqa: E731  (on the host)
        return take(train), take(test)
    return None, _sampler(env)(jax.random.PRNGKey(bench.eval_seed), int(test_tasks))


def evenly(tasks: Any, count: int) -> Any:
    """``count`` of the batched ``tasks``, evenly spaced (all of them when there are no more), as numpy arrays."""
    size = int(np.asarray(jax.tree.leaves(tasks)[0]).shape[0])
    index = np.arange(size) if count >= size else np.linspace(0, size - 1, count).round().astype(np.int64)
    return jax.tree.map(lambda x: np.asarray(x)[index], tasks)


def training_tasks(bench: InContextBenchmark, env: Any) -> Any | None:
    """The benchmark's finite set of training tasks (batched params), or ``None`` (the env's own sampler)."""
    return task_split(bench, env, 0)[0] if bench.held_out in ("goals", "meta-world") else None


@functools.lru_cache(maxsize=8)
def _sampler(env: Any):
    """``env.task_space.sample_batch`` jitted once per env (one small compile instead of op-by-op dispatch)."""
    return jax.jit(env.task_space.sample_batch, static_argnums=1)


def repeat_tasks(tasks: Any, repeats: int) -> Any:
    """Each task ``repeats`` times in a row (``[a, a, b, b, ...]``), as numpy arrays."""
    return jax.tree.map(lambda x: np.repeat(np.asarray(x), repeats, axis=0), tasks)  # on the host: no compile


class TaskSet:
    """A teacher that draws uniformly (with replacement) from a fixed batch of tasks; it ignores feedback.

    ``init`` ignores the env's task space (the set is the distribution).
    """

    def __init__(self, tasks: Any):
        self.tasks = jax.tree.map(jnp.asarray, tasks)  # indexed by traced indices
        self.size = int(np.asarray(jax.tree.leaves(tasks)[0]).shape[0])

    def init(self, key: jax.Array, task_space: Any = None) -> EmptyState:
        return EmptyState(jnp.zeros((), jnp.int32))

    def sample(self, state: EmptyState, key: jax.Array, n: int) -> tuple[EmptyState, Any]:
        index = jax.random.randint(key, (n,), 0, self.size)
        return state.replace(step=state.step + 1), index_tasks(self.tasks, index)

    def update(self, state: EmptyState, tasks: Any, feedback: Feedback) -> EmptyState:
        return state
