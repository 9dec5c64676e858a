"""LPO and TA-LPO: learned drift functions (Lu et al. 2022; Jackson et al. 2024).

The drift is a tiny MLP over features of (r, A), made a valid mirror-learning
drift *by construction* for any weights:

1. Features ``x(r, A) = [r-1, (r-1)^2, log r, (log r)^2] ++ same * A`` (TA-LPO
   appends ``x * progress`` and optionally a constant ``log N``), network
   ``f = W2 tanh(W1 x)`` without biases, as in the LPO paper.
2. ``g(r) = f(r) - f(1) - f'(1) (r - 1)`` (value and slope at r = 1 taken by
   one ``jax.jvp``): g and dg/dr vanish at r = 1 for *every* weight setting,
   even with extra inputs such as ``log N`` that do not vanish at r = 1.
   The reference instead uses ``relu(f - 1e-4)``, which is zero near r = 1 only
   while |f| < 1e-4 there; subtracting the first-order Taylor term is exact.
3. ``D = relu(g [+ D_PPO])``.  relu keeps D >= 0, and because g = O((r-1)^2)
   it leaves D = 0 with zero gradient at r = 1 (relu'(g) * g' = 0 there).
   PPO-init adds PPO's clip drift inside the relu; it is zero on
   [1-eps, 1+eps], so the guarantee is kept and zero weights give D = D_PPO.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from metarl.objectives.ppo_clip import ppo_clip_drift

_TINY_RATIO = 1e-8  # keeps log(r) finite should a ratio underflow to 0


def ratio_features(ratio: jax.Array, advantage: jax.Array) -> jax.Array:
    """The 8 LPO features, stacked on a new last axis; all vanish at r = 1."""
    r_minus_1 = ratio - 1.0
    log_r = jnp.log(jnp.maximum(ratio, _TINY_RATIO))
    base = jnp.stack([r_minus_1, r_minus_1**2, log_r, log_r**2], axis=-1)
    return jnp.concatenate([base, base * advantage[..., None]], axis=-1)


def mlp_drift_network(weights: dict, features: jax.Array) -> jax.Array:
    """``W2 tanh(W1 x)`` without biases; returns shape ``features.shape[:-1]``."""
    hidden = jnp.tanh(features @ weights["w1"])
    return (hidden @ weights["w2"])[..., 0]


@dataclasses.dataclass(frozen=True)
class LPO:
    """Learned Policy Optimisation drift; meta-params ``{"w1": [F, H], "w2": [H, 1]}``."""

    hidden_size: int = 128
    ppo_init: bool = True
    clip_eps: float = 0.2
    name: str = "lpo"

    def __post_init__(self) -> None:
        if self.hidden_size < 1:
            raise ValueError(f"hidden_size must be >= 1, got {self.hidden_size}")
        if not 0.0 < self.clip_eps < 1.0:
            raise ValueError(f"clip_eps must lie in (0, 1), got {self.clip_eps}")

    @property
    def num_features(self) -> int:
        return 8

    def features(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        del progress
        return ratio_features(ratio, advantage)

    def init(self, key: jax.Array) -> dict:
        """LeCun-normal first layer.  With PPO-init the output layer starts at 0,
        so the initial drift is exactly PPO's yet every output weight has a
        first-order effect (all-zero weights would be a flat saddle for ES)."""
        k1, k2 = jax.random.split(key)
        w1 = jax.random.normal(k1, (self.num_features, self.hidden_size), jnp.float32)
        w1 = w1 / math.sqrt(self.num_features)
        if self.ppo_init:
            w2 = jnp.zeros((self.hidden_size, 1), jnp.float32)
        else:
            w2 = jax.random.normal(k2, (self.hidden_size, 1), jnp.float32) / math.sqrt(self.hidden_size)
        return {"w1": w1, "w2": w2}

    def learned_part(self, meta_params: dict, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        """g(r): the network minus its value and slope at r = 1 (see module doc)."""
        ratio = jnp.asarray(ratio, jnp.float32)
        advantage = jnp.broadcast_to(jnp.asarray(advantage, jnp.float32), ratio.shape)
        progress = jnp.broadcast_to(jnp.asarray(progress, jnp.float32), ratio.shape)

        def network_of_ratio(r: jax.Array) -> jax.Array:
            return mlp_drift_network(meta_params, self.features(r, advantage, progress))

        ones = jnp.ones_like(ratio)
        # Elementwise in r, so a jvp with unit tangent gives every element's slope.
        value_at_1, slope_at_1 = jax.jvp(network_of_ratio, (ones,), (ones,))
        return network_of_ratio(ratio) - value_at_1 - slope_at_1 * (ratio - 1.0)

    def __call__(self, meta_params: dict, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        inner = self.learned_part(meta_params, ratio, advantage, progress)
        if self.ppo_init:
            inner = inner + ppo_clip_drift(ratio, advantage, self.clip_eps)
        return jax.nn.relu(inner)


@dataclasses.dataclass(frozen=True)
class TALPO(LPO):
    """Temporally-aware LPO: features ``[x, (n/N) x]`` (+ constant ``log N``).

    ``progress`` = n/N in [0, 1] is supplied by the agent each update, so the
    drift can change over the agent's lifetime.  ``lifetime`` (N, in updates)
    is only used when ``use_log_lifetime`` adds ``log N`` as an input.
    """

    use_log_lifetime: bool = False
    lifetime: int = 0
    name: str = "ta_lpo"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_log_lifetime and self.lifetime < 1:
            raise ValueError(f"use_log_lifetime needs lifetime >= 1 (updates), got {self.lifetime}")

    @property
    def num_features(self) -> int:
        return 16 + int(self.use_log_lifetime)

    def features(self, ratio: jax.Array, advantage: jax.Array, progress: jax.Array) -> jax.Array:
        base = ratio_features(ratio, advantage)
        parts = [base, base * progress[..., None]]
        if self.use_log_lifetime:
            parts.append(jnp.full(ratio.shape + (1,), math.log(self.lifetime), jnp.float32))
        return jnp.concatenate(parts, axis=-1)
