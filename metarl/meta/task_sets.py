"""Train and held-out task sets of one env, drawn from its ``TaskSpace`` (Meta-World's ML1 rule, in general form).

``env.task_sets: {train: 64, heldout: 32, seed: 0}`` in a meta-training config makes the inner runs train on tasks
of the env's distribution instead of its one default task: two finite sets are drawn once from the space with
keys derived from ``seed`` (different keys, so on a continuous space no held-out task is a training task),
every inner run of ES trains on one training task picked by its seed key, and evaluation runs seed ``i`` on
held-out task ``i`` (cycling when there are more seeds than tasks). ``env.overrides`` set the fields the space
leaves fixed; overriding a free field would be silently replaced by the draw, so it is refused.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

import envs

_TASK_SALT = 104_729  # a run's task index comes from its seed key, folded with this


@dataclasses.dataclass(frozen=True, eq=False)
class TaskSets:
    env_name: str
    train: Any  # params pytree with a leading [num_train] axis
    heldout: Any  # [num_heldout]

    @property
    def num_train(self) -> int:
        return jax.tree.leaves(self.train)[0].shape[0]

    @property
    def num_heldout(self) -> int:
        return jax.tree.leaves(self.heldout)[0].shape[0]

    def for_seeds(self, keys: jax.Array) -> Any:
        """One training task per seed key (``[seeds]`` batch): the same keys pick the same tasks."""
        index = _task_index(keys, self.num_train)
        return jax.tree.map(lambda x: x[index], self.train)

    def heldout_for(self, num_seeds: int) -> Any:
        """Held-out task ``i % num_heldout`` for evaluation seed ``i`` (``[num_seeds]`` batch)."""
        index = jnp.arange(num_seeds) % self.num_heldout
        return jax.tree.map(lambda x: x[index], self.heldout)


@functools.partial(jax.jit, static_argnums=1)
def _task_index(keys: jax.Array, num_tasks: int) -> jax.Array:
    return jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, _TASK_SALT), (), 0, num_tasks))(keys)


def parse(tasks: Any) -> dict | None:
    """``env.task_sets`` as a dict with ``train``, ``heldout`` and ``seed``, or ``None`` (one task per env)."""
    if tasks is None:
        return None
    if not isinstance(tasks, dict):
        raise ValueError(f"env.task_sets must be null or a mapping with train, heldout and seed; got {tasks!r}")
    unknown = sorted(set(tasks) - {"train", "heldout", "seed"})
    if unknown:
        raise ValueError(f"env.task_sets has no key {unknown[0]!r} (valid: train, heldout, seed)")
    parsed = {"train": tasks.get("train", 64), "heldout": tasks.get("heldout", 32), "seed": tasks.get("seed", 0)}
    for name in ("train", "heldout"):
        value = parsed[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"env.task_sets.{name} must be an integer >= 1, got {value!r}")
    if isinstance(parsed["seed"], bool) or not isinstance(parsed["seed"], int):
        raise ValueError(f"env.task_sets.seed must be an integer, got {parsed['seed']!r}")
    return parsed


def check(env_name: str, overrides: dict | None) -> tuple[Any, Any]:
    """``(task space, params)`` of ``env_name``, without computing anything; refuses an env whose task space is a
    point and overrides of the fields it draws."""
    env, params = envs.make(env_name, **(overrides or {}))
    space = getattr(env, "task_space", None)
    if space is None or not space.fields:
        raise ValueError(f"env.task_sets: {env_name} has no task distribution (its TaskSpace has no free fields)")
    clash = sorted(set(space.names) & set(overrides or {}))
    if clash:
        raise ValueError(f"env.task_sets: env.overrides sets {clash[0]!r}, a field the task distribution draws; "
                         f"remove it from env.overrides (free fields: {', '.join(space.names)})")
    return space, params


def draw(env_name: str, overrides: dict | None, train: int, heldout: int, seed: int) -> TaskSets:
    """Both sets of ``env_name`` (see :func:`check` for what is refused)."""
    space, params = check(env_name, overrides)
    fixed = {k: getattr(params, k) for k in (overrides or {}) if hasattr(params, k)}
    key = jax.random.PRNGKey(seed)

    def sample(k: jax.Array, n: int) -> Any:
        batch = jax.jit(space.sample_batch, static_argnums=1)(k, n)
        return batch.replace(**{k: jnp.broadcast_to(v, (n,) + jnp.shape(v)) for k, v in fixed.items()}) if fixed else batch

    return TaskSets(env_name, sample(jax.random.fold_in(key, 0), train), sample(jax.random.fold_in(key, 1), heldout))


def draw_all(env_names: list[str], overrides: dict | None, tasks: dict | None) -> dict[str, TaskSets] | None:
    """Every env's sets for a parsed ``env.task_sets`` (:func:`parse`), or ``None`` without one."""
    if tasks is None:
        return None
    return {name: draw(name, overrides, tasks["train"], tasks["heldout"], tasks["seed"]) for name in env_names}
