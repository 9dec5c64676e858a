"""Greedy evaluation of an agent on a held-out task set, with Meta-World's success rule.

Meta-World counts an episode as a success when ``info["success"]`` is true at
*any* step of it; :func:`metarl.agents.policy.evaluate_policy` reads success
at the last step. :class:`envs.wrappers.AnyStepSuccess` turns the env's per-step flag into
"succeeded so far in this episode", so the last step carries the any-step
answer and ``evaluate_policy`` stays the one evaluator.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from envs.wrappers import AnyStepSuccess
from metarl.agents.policy import ActFn, evaluate_policy


def task_count(tasks: Any) -> int:
    """Length of the leading axis of a batched params pytree."""
    return int(jax.tree.leaves(tasks)[0].shape[0])


def evaluate_on_tasks(act: ActFn, params: Any, env: Any, tasks: Any, key: jax.Array,
                      episodes_per_task: int) -> dict[str, jax.Array]:
    """Mean undiscounted return and success rate of ``episodes_per_task`` episodes on each task of ``tasks``.

    ``tasks`` is a batched params pytree ``[K]``; the ``K * episodes_per_task``
    episodes run in parallel through :func:`evaluate_policy`.
    """
    episodes = task_count(tasks) * episodes_per_task
    tiled = jax.tree.map(lambda x: jnp.repeat(jnp.asarray(x), episodes_per_task, axis=0), tasks)
    out = evaluate_policy(act, params, AnyStepSuccess(env), tiled, key, episodes, batched_params=True)
    return {"eval_return": jnp.mean(out["return"]), "eval_success": jnp.mean(out["success"].astype(jnp.float32))}
