"""Discovered Policy Optimisation (DPO): a closed-form drift found by meta-learning.

For A >= 0:  D = relu((r-1)A - alpha * tanh((r-1)A / alpha))
For A <  0:  D = relu(log(r)A - beta * tanh(log(r)A / beta))

Negative advantages are penalised in log-ratio space ("rollback").  Both
branches are x - c*tanh(x/c) = O(x^3) at x = 0, so D = 0 with zero gradient
at r = 1.  alpha = 2, beta = 0.6 as in luchris429/purejaxrl's DPO.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

_TINY_RATIO = 1e-8  # keeps log(r) finite should a ratio underflow to 0


def dpo_drift(ratio: jax.Array, advantage: jax.Array, alpha: float = 2.0, beta: float = 0.6) -> jax.Array:
    positive = (ratio - 1.0) * advantage
    negative = jnp.log(jnp.maximum(ratio, _TINY_RATIO)) * advantage
    drift_pos = jax.nn.relu(positive - alpha * jnp.tanh(positive / alpha))
    drift_neg = jax.nn.relu(negative - beta * jnp.tanh(negative / beta))
    return jnp.where(advantage >= 0.0, drift_pos, drift_neg)


@dataclasses.dataclass(frozen=True)
class DPO:
    alpha: float = 2.0
    beta: float = 0.6
    name: str = "dpo"

    def __post_init__(self) -> None:
        if not (self.alpha > 0 and self.beta > 0):
            raise ValueError(f"DPO needs alpha > 0 and beta > 0, got alpha={self.alpha}, beta={self.beta}")

    def init(self, key: jax.Array) -> dict:
        del key
        return {}

    def __call__(self, meta_params, ratio, advantage, progress):
        del meta_params, progress
        return dpo_drift(ratio, advantage, self.alpha, self.beta)
