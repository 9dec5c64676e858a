"""PPO's clipped surrogate written as a mirror-learning drift.

min(r*A, clip(r, 1-eps, 1+eps)*A) = r*A - relu((r - clip(r, 1-eps, 1+eps)) * A)
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp


def ppo_clip_drift(ratio: jax.Array, advantage: jax.Array, clip_eps: float) -> jax.Array:
    return jax.nn.relu((ratio - jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)) * advantage)


@dataclasses.dataclass(frozen=True)
class PPOClip:
    clip_eps: float = 0.2
    name: str = "ppo"

    def init(self, key: jax.Array) -> dict:
        del key
        return {}

    def __call__(self, meta_params, ratio, advantage, progress):
        del meta_params, progress
        return ppo_clip_drift(ratio, advantage, self.clip_eps)
