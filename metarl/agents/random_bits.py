"""Turn one batch of random bits into every draw an update needs.

Each ``jax.random`` call site compiles to its own unrolled Threefry block, and
on CPU those dominate compile time (~0.3 s each) and add loop latency. PPO
therefore draws one ``uint32`` vector per update and slices it into keys,
uniforms, Gumbel and Gaussian noise here. ``jax.random.split`` itself is a
Threefry evaluation whose outputs become key data, so keys made from bits are
as good as split keys.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

_TINY = float(np.finfo(np.float32).tiny)


def key_width(key: jax.Array) -> int:
    """uint32 words per key (2 for threefry)."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return int(jax.random.key_data(key).shape[-1])
    return int(key.shape[-1])


def keys_from_bits(template: jax.Array, bits: jax.Array) -> jax.Array:
    """Keys of the same kind as ``template`` (typed or raw) from ``[..., width]`` bits."""
    if jnp.issubdtype(template.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(bits, impl=jax.random.key_impl(template))
    return bits


def uniform_open(bits: jax.Array) -> jax.Array:
    """float32 uniform on the open interval (0, 1) from uint32 bits."""
    mantissa = (bits >> 9).astype(jnp.float32)  # 23 random bits
    return (mantissa + 0.5) * (1.0 / (1 << 23))


def gumbel(bits: jax.Array) -> jax.Array:
    return -jnp.log(-jnp.log(uniform_open(bits)))


def normal(bits: jax.Array) -> jax.Array:
    """Standard normal by inverse CDF (as ``jax.random.normal`` does)."""
    return jnp.sqrt(2.0) * jax.lax.erf_inv(2.0 * uniform_open(bits) - 1.0)


class BitBudget:
    """Slices consecutive chunks off one ``jax.random.bits`` draw.

    Usage: declare the shapes first (``take`` returns slots), then ``draw(key)``
    and ``get(slot)``. Shapes are static, so the slicing is free under jit.
    """

    def __init__(self):
        self._shapes: list[tuple[int, ...]] = []

    def take(self, *shape: int) -> int:
        self._shapes.append(tuple(shape))
        return len(self._shapes) - 1

    def draw(self, key: jax.Array) -> list[jax.Array]:
        sizes = [math.prod(s) for s in self._shapes]
        flat = jax.random.bits(key, (sum(sizes),), jnp.uint32)
        out, start = [], 0
        for shape, size in zip(self._shapes, sizes):
            out.append(flat[start : start + size].reshape(shape))
            start += size
        return out
