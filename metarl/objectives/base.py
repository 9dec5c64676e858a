"""The drift protocol: PPO-family actor losses in mirror-learning form.

    actor_loss = -mean(r * A - drift(meta_params, r, A, progress))

``r`` is the probability ratio, ``A`` the (per-minibatch normalised)
advantage and ``progress`` = update index / number of updates, in [0, 1].
A drift must be >= 0 and be 0 with zero gradient at r = 1.
``meta_params`` is a pytree (``{}`` for fixed drifts), so a population of
objectives is a vmapped leading axis.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax


class Drift(Protocol):
    name: str

    def init(self, key: jax.Array) -> Any:
        """Initial meta-parameters (``{}`` for a fixed drift)."""

    def __call__(self, meta_params: Any, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        """Elementwise drift, same shape as ``ratio``."""
