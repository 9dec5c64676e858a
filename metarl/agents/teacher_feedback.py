"""What a rollout tells a curriculum teacher: per env, or per finished episode.

Scores are ``teacher_score`` of the GAE advantages: ``"pvl"`` (positive value
loss, mean of ``max(A, 0)``) or ``"gae_abs"`` (mean ``|A|``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from curricula.base import Feedback


def step_scores(advantages: jax.Array, teacher_score: str) -> jax.Array:
    return jnp.maximum(advantages, 0.0) if teacher_score == "pvl" else jnp.abs(advantages)


def per_env_feedback(traj: dict, env_state: Any, step_score: jax.Array) -> Feedback:
    """One entry per env (a task per rollout): mean over the episodes it finished in
    the rollout; an env whose episode is still running reports its return so far."""
    ends = traj["episode_end"]
    ended = ends.astype(jnp.float32)
    count = jnp.sum(ended, axis=0)
    finished_return = jnp.sum(traj["episode_return"] * ended, axis=0) / jnp.maximum(count, 1.0)
    returns = jnp.where(count > 0, finished_return, env_state.episode_return)
    best = jnp.max(jnp.where(ends, traj["episode_return"], -jnp.inf), axis=0)
    return Feedback(
        returns=returns,
        success=jnp.sum(traj["episode_success"] * ended, axis=0) / jnp.maximum(count, 1.0),
        mask=jnp.ones(ends.shape[1:], bool),
        scores=jnp.mean(step_score, axis=0),
        max_returns=jnp.where(count > 0, best, returns),
    )


def per_episode_feedback(traj: dict, step_score: jax.Array) -> tuple[Any, Feedback]:
    """``(tasks, feedback)`` with one entry per step, masked to finished episodes (a task
    per episode); an episode's score is the mean step score over its steps in this rollout."""
    ends = traj["episode_end"]
    t, n = ends.shape
    time = jnp.arange(t)[:, None]
    end_index = jnp.where(ends, time, -1)
    prev_end = jnp.concatenate([jnp.full((1, n), -1), jax.lax.cummax(end_index, axis=0)[:-1]], axis=0)
    csum = jnp.cumsum(step_score, axis=0)
    before = jnp.where(prev_end >= 0, jnp.take_along_axis(csum, jnp.maximum(prev_end, 0), axis=0), 0.0)
    episode_score = (csum - before) / (time - prev_end).astype(jnp.float32)
    flat = lambda x: x.reshape((t * n,) + x.shape[2:])  # noqa: E731
    returns = flat(traj["episode_return"])
    feedback = Feedback(
        returns=returns,
        success=flat(traj["episode_success"]),
        mask=flat(ends),
        scores=flat(episode_score),
        max_returns=returns,
    )
    return jax.tree.map(flat, traj["task"]), feedback
