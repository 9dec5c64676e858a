"""The teacher protocol shared by every curriculum.

A teacher is a stateless object (its settings are static); its whole state is
a pytree, so ``init``, ``sample`` and ``update`` run inside ``jit``, ``scan``
and ``vmap`` and the state is checkpointed with the training state.

* ``init(key, task_space) -> state``
* ``sample(state, key, n) -> (state, tasks)`` where ``tasks`` is a batched
  params pytree with leading axis ``n``.
* ``update(state, tasks, feedback) -> state`` where ``tasks`` (leading axis
  ``m``) and :class:`Feedback` (arrays of length ``m``) correspond entry by
  entry; ``feedback.mask`` says which entries carry information (an episode
  finished, or a score was computed).
"""

from __future__ import annotations

from typing import Any, Protocol

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Feedback:
    """What the learner reports about the tasks it was given."""

    returns: jax.Array  # [m] episodic return (mean over episodes finished on the task)
    success: jax.Array  # [m] success rate in [0, 1]
    mask: jax.Array  # [m] bool: entry holds a finished episode or a score
    scores: jax.Array  # [m] value-based level score (PVL / MaxMC / |GAE|); 0 when unused
    max_returns: jax.Array  # [m] best return seen in this batch (MaxMC needs R_max)

    @classmethod
    def from_returns(cls, returns, success=None, mask=None, scores=None) -> "Feedback":
        returns = jnp.asarray(returns, jnp.float32)
        zeros = jnp.zeros_like(returns)
        return cls(
            returns=returns,
            success=zeros if success is None else jnp.asarray(success, jnp.float32),
            mask=jnp.ones(returns.shape, bool) if mask is None else jnp.asarray(mask, bool),
            scores=zeros if scores is None else jnp.asarray(scores, jnp.float32),
            max_returns=returns,
        )


class Teacher(Protocol):
    def init(self, key: jax.Array, task_space: Any) -> Any: ...

    def sample(self, state: Any, key: jax.Array, n: int) -> tuple[Any, Any]: ...

    def update(self, state: Any, tasks: Any, feedback: Feedback) -> Any: ...
