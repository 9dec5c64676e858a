"""Pack a pytree of arrays into one flat ``uint32`` vector, exactly, and back.

Each call of a jitted function costs about 2 µs per argument and result leaf on
a CPU, which dominates a single env step (a CartPole state and its params are
16 leaves). The gymnasium export therefore carries the key, state and task as
one packed vector and appends everything the host needs to it, so a step is one
dispatch with two inputs (that vector and the action) and one output.

32-bit leaves are bit-cast (exact for float32, int32, uint32), narrower ints and
bools are widened, PRNG key arrays go as their key data. ``jax.flatten_util``'s
``ravel_pytree`` promotes to one dtype instead, which is not exact for ints above
2**24 and does not take keys.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

WORD = np.dtype(np.uint32)


class _Leaf:
    """How one leaf maps to words: ``kind`` in {'bits', 'wide', 'bool', 'key'}."""

    def __init__(self, x: Any):
        """``x``: an array or a ``jax.ShapeDtypeStruct`` (e.g. from ``jax.eval_shape``)."""
        self.shape = tuple(np.shape(x) if not hasattr(x, "shape") else x.shape)
        dtype = x.dtype if hasattr(x, "dtype") else jnp.result_type(x)
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            # a ShapeDtypeStruct's key dtype carries its implementation
            self.kind, self.impl = "key", getattr(dtype, "_impl", None) or jax.random.key_impl(x)
            self.dtype = WORD
            self.words_shape = tuple(jax.eval_shape(jax.random.key_data, x).shape)
        else:
            self.dtype = np.dtype(dtype)
            self.words_shape = self.shape
            if self.dtype == np.bool_:
                self.kind = "bool"
            elif self.dtype.itemsize == 4:
                self.kind = "bits"
            elif self.dtype.itemsize < 4:
                self.kind = "wide"
            else:
                raise ValueError(f"cannot pack a {self.dtype} leaf exactly into 32-bit words")
        self.size = math.prod(self.words_shape)
        self.example = jax.ShapeDtypeStruct(self.shape, self.dtype if self.kind != "key" else dtype)

    def signature(self) -> tuple:
        return (self.kind, self.shape, str(self.dtype), self.words_shape, str(getattr(self, "impl", "")))

    def to_words(self, x: jax.Array) -> jax.Array:
        if self.kind == "key":
            x = jax.random.key_data(x)
        x = jnp.asarray(x)
        if self.kind == "bits":
            x = jax.lax.bitcast_convert_type(x, jnp.uint32)
        elif self.kind == "bool":
            x = x.astype(jnp.uint32)
        elif self.kind == "wide":
            wide = jnp.float32 if jnp.issubdtype(self.dtype, jnp.floating) else jnp.int32
            x = jax.lax.bitcast_convert_type(x.astype(wide), jnp.uint32)
        return jnp.ravel(x.astype(jnp.uint32))

    def from_words(self, w: jax.Array) -> jax.Array:
        w = w.reshape(self.words_shape)
        if self.kind == "key":
            return jax.random.wrap_key_data(w, impl=self.impl)
        if self.kind == "bool":
            return w != 0
        if self.kind == "bits":
            return jax.lax.bitcast_convert_type(w, self.dtype)
        wide = jnp.float32 if jnp.issubdtype(self.dtype, jnp.floating) else jnp.int32
        return jax.lax.bitcast_convert_type(w, wide).astype(self.dtype)

    def host_reader(self, part: slice):
        """``words -> leaf`` on numpy, specialised once (a host step reads every leaf)."""
        shape = self.words_shape
        if self.kind == "bits":
            dtype = self.dtype
            return lambda w: w[part].view(dtype).reshape(shape)
        if self.kind == "bool":
            return lambda w: (w[part] != 0).reshape(shape)
        if self.kind == "wide":
            wide = np.float32 if np.issubdtype(self.dtype, np.floating) else np.int32
            dtype = self.dtype
            return lambda w: w[part].view(wide).astype(dtype).reshape(shape)
        raise ValueError("key leaves are unpacked on the device only")


class Packer:
    """Packs pytrees with the structure, shapes and dtypes of ``example``."""

    def __init__(self, example: Any):
        leaves, self.treedef = jax.tree.flatten(example)
        self.leaves = [_Leaf(x) for x in leaves]
        self.offsets = np.cumsum([0] + [leaf.size for leaf in self.leaves]).tolist()
        self.size = self.offsets[-1]
        # equal structures hash equal, so jitted functions taking a Packer as a static argument
        # compile once per structure, not once per Packer object (computed once: jit hashes
        # static arguments at every call)
        self._key = (self.treedef, tuple(leaf.signature() for leaf in self.leaves))
        self._hash = hash(self._key)
        self._slices = [slice(a, b) for a, b in zip(self.offsets, self.offsets[1:])]
        self._readers = None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Packer) and self._key == other._key)

    def pack(self, tree: Any) -> jax.Array:
        """``uint32`` vector of length :attr:`size` (works under ``jit``)."""
        leaves = self.treedef.flatten_up_to(tree)
        parts = [spec.to_words(x) for spec, x in zip(self.leaves, leaves)]
        return jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.uint32)

    def unpack(self, words: jax.Array) -> Any:
        """Inverse of :meth:`pack`, as JAX arrays (works under ``jit``)."""
        leaves = [spec.from_words(words[a:b]) for spec, a, b in zip(self.leaves, self.offsets, self.offsets[1:])]
        return self.treedef.unflatten(leaves)

    def unpack_host(self, words: np.ndarray) -> Any:
        """Inverse of :meth:`pack` on a numpy vector: 32-bit leaves are views of ``words``."""
        if self._readers is None:
            self._readers = [spec.host_reader(part) for spec, part in zip(self.leaves, self._slices)]
        return self.treedef.unflatten([read(words) for read in self._readers])
