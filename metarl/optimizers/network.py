"""OPEN's per-parameter network: a GRU cell, then ``Dense-LN-relu`` x2, then 3 outputs.

Applied elementwise: inputs ``[..., features]`` and carry ``[..., gru_features]``
for every parameter at once (flax layers act on the last axis).
"""

from __future__ import annotations

import flax.linen as nn
import jax


class PerParameterNetwork(nn.Module):
    gru_features: int = 8
    hidden_size: int = 16

    @nn.compact
    def __call__(self, carry: jax.Array, inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        carry, hidden = nn.GRUCell(features=self.gru_features, name="gru")(carry, inputs)
        x = hidden
        for i in range(2):
            x = nn.Dense(self.hidden_size, name=f"dense_{i}")(x)
            x = nn.LayerNorm(name=f"norm_{i}")(x)
            x = nn.relu(x)
        # (magnitude m, exponent e, noise scale s)
        return carry, nn.Dense(3, name="head")(x)
