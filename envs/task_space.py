"""TaskSpace: which fields of an env's ``params`` pytree vary between tasks.

A task *is* an ``EnvParams`` value. The TaskSpace names the free fields, their
bounds and dtypes, samples tasks (independently per field, or with an env's own
structured sampler), checks membership and maps tasks to and from a flat float
vector so that generic teachers (bandits over bins, ALP-GMM) can work on any env.

Everything here is pure JAX and works under ``jit`` and ``vmap``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

KINDS = ("float", "int", "bool")


@dataclasses.dataclass(frozen=True)
class Field:
    """One free field of the params dataclass.

    ``low``/``high`` are inclusive bounds (scalars or arrays broadcastable to
    ``shape``). ``log=True`` samples log-uniformly (positive bounds only).
    Integer fields sample uniformly from ``low..high`` inclusive.
    """

    name: str
    low: Any = 0.0
    high: Any = 1.0
    shape: tuple[int, ...] = ()
    kind: str = "float"
    log: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Field {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "bool":
            object.__setattr__(self, "low", 0)
            object.__setattr__(self, "high", 1)
        lo = np.broadcast_to(np.asarray(self.low, np.float64), self.shape)
        hi = np.broadcast_to(np.asarray(self.high, np.float64), self.shape)
        if np.any(lo > hi):
            raise ValueError(f"Field {self.name!r}: low > high")
        if self.log and np.any(lo <= 0):
            raise ValueError(f"Field {self.name!r}: log-uniform needs positive bounds")

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def dtype(self):
        return {"float": jnp.float32, "int": jnp.int32, "bool": jnp.bool_}[self.kind]

    def low_array(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.low, np.float32), self.shape)

    def high_array(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.high, np.float32), self.shape)

    def sample(self, key: jax.Array) -> jax.Array:
        lo, hi = jnp.asarray(self.low_array()), jnp.asarray(self.high_array())
        if self.kind == "bool":
            return jax.random.bernoulli(key, 0.5, self.shape)
        u = jax.random.uniform(key, self.shape)
        # ints: floor over [lo, hi + 1) gives each integer its share of the (log-)interval
        top = hi + 1.0 if self.kind == "int" else hi
        x = jnp.exp(jnp.log(lo) + u * (jnp.log(top) - jnp.log(lo))) if self.log else lo + u * (top - lo)
        if self.kind == "int":
            return jnp.clip(jnp.floor(x), lo, hi).astype(jnp.int32)
        return x.astype(jnp.float32)

    def cast(self, x: jax.Array) -> jax.Array:
        """Map a float array (e.g. a teacher's proposal) onto a valid value."""
        x = jnp.reshape(x, self.shape)
        if self.kind == "bool":
            return x > 0.5
        x = jnp.clip(x, self.low_array(), self.high_array())
        if self.kind == "int":
            return jnp.round(x).astype(jnp.int32)
        return x.astype(jnp.float32)


class TaskSpace:
    """The set of tasks of one env: a default ``params`` plus free fields.

    Args:
        default: the params dataclass every task starts from (non-free fields
            are copied from it).
        fields: the free fields.
        sampler: optional ``key -> params`` for structured distributions
            (e.g. procedural gridworlds whose walls and objects must not
            overlap). Its samples must lie in the box given by ``fields``.
        derive: optional ``params -> params`` that recomputes fields derived
            from free ones (CartPole's ``total_mass``); applied to every task
            this space produces.
        name: for messages.
    """

    def __init__(
        self,
        default: Any,
        fields: Sequence[Field] = (),
        sampler: Callable[[jax.Array], Any] | None = None,
        derive: Callable[[Any], Any] | None = None,
        name: str = "task space",
    ):
        self.default = default
        self.fields = tuple(fields)
        self.name = name
        self._sampler = sampler
        self._derive = derive if derive is not None else (lambda p: p)
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"{name}: duplicate field names {names}")
        known = {f.name for f in dataclasses.fields(default)}
        missing = [n for n in names if n not in known]
        if missing:
            raise ValueError(f"{name}: fields {missing} are not fields of {type(default).__name__}")
        for f in self.fields:
            value = np.asarray(getattr(default, f.name))
            if value.shape != f.shape:
                raise ValueError(
                    f"{name}: field {f.name!r} has shape {value.shape} in the default params, "
                    f"but the TaskSpace declares {f.shape}"
                )

    # --- description -----------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def dim(self) -> int:
        """Length of the flat vector encoding."""
        return sum(f.size for f in self.fields)

    @property
    def low(self) -> np.ndarray:
        return self._concat([f.low_array() for f in self.fields])

    @property
    def high(self) -> np.ndarray:
        return self._concat([f.high_array() for f in self.fields])

    @property
    def discrete_mask(self) -> np.ndarray:
        """True for vector entries that encode int or bool values."""
        return self._concat([np.full(f.shape, f.kind != "float") for f in self.fields]).astype(bool)

    def vector_names(self) -> list[str]:
        """A label per vector entry, e.g. ``['gravity', 'walls[0]', ...]``."""
        out = []
        for f in self.fields:
            out += [f.name] if f.shape == () else [f"{f.name}[{i}]" for i in range(f.size)]
        return out

    def __repr__(self) -> str:
        inner = ", ".join(f"{f.name}{list(f.shape) if f.shape else ''}" for f in self.fields)
        return f"TaskSpace({self.name}: {inner or 'no free fields'})"

    def derive(self, params: Any) -> Any:
        """Recompute the fields that depend on free ones (identity by default)."""
        return self._derive(params)

    # --- sampling and membership ------------------------------------------
    def sample(self, key: jax.Array) -> Any:
        """One task (params pytree). ``vmap`` over keys for a batch."""
        if self._sampler is not None:
            return self._derive(self._sampler(key))
        return self.uniform(key)

    def sample_batch(self, key: jax.Array, n: int) -> Any:
        return jax.vmap(self.sample)(jax.random.split(key, n))

    def uniform(self, key: jax.Array) -> Any:
        """Independent uniform sample per field (ignores a structured sampler)."""
        if not self.fields:
            return self.default
        keys = jax.random.split(key, len(self.fields))
        return self._derive(self.default.replace(**{f.name: f.sample(k) for f, k in zip(self.fields, keys)}))

    def contains(self, params: Any) -> jax.Array:
        """Scalar bool: every free field inside its bounds (and integral)."""
        ok = jnp.array(True)
        for f in self.fields:
            x = jnp.asarray(getattr(params, f.name))
            if x.shape != f.shape:
                return jnp.array(False)
            if f.kind == "bool":
                continue
            xf = x.astype(jnp.float32)
            ok &= jnp.all(xf >= f.low_array()) & jnp.all(xf <= f.high_array())
            if f.kind == "int":
                ok &= jnp.all(jnp.round(xf) == xf)
        return ok

    def check(self, params: Any) -> None:
        """Host-side validation with a message naming the offending field."""
        for f in self.fields:
            x = np.asarray(getattr(params, f.name))
            if x.shape != f.shape:
                raise ValueError(f"{self.name}: {f.name} has shape {x.shape}, expected {f.shape}")
            if f.kind == "bool":
                continue
            lo, hi = f.low_array(), f.high_array()
            if not np.all(np.isfinite(x.astype(np.float64))):
                raise ValueError(f"{self.name}: {f.name}={x.tolist()} is not a finite number")
            if np.any(x < lo) or np.any(x > hi):
                raise ValueError(
                    f"{self.name}: {f.name}={x.tolist()} is outside [{lo.tolist()}, {hi.tolist()}]"
                )

    # --- vector encoding ---------------------------------------------------
    def to_vector(self, params: Any) -> jax.Array:
        """Flat float32 vector of the free fields (shape ``(dim,)``)."""
        parts = [jnp.ravel(jnp.asarray(getattr(params, f.name))).astype(jnp.float32) for f in self.fields]
        return jnp.concatenate(parts) if parts else jnp.zeros((0,), jnp.float32)

    def from_vector(self, vector: jax.Array, base: Any | None = None) -> Any:
        """Inverse of ``to_vector``; values are clipped, rounded and cast."""
        base = self.default if base is None else base
        vector = jnp.asarray(vector, jnp.float32)
        if vector.shape != (self.dim,):
            raise ValueError(f"{self.name}: vector has shape {vector.shape}, expected ({self.dim},)")
        updates, i = {}, 0
        for f in self.fields:
            updates[f.name] = f.cast(vector[i : i + f.size])
            i += f.size
        return self._derive(base.replace(**updates)) if updates else base

    def normalize(self, vector: jax.Array) -> jax.Array:
        """Map a task vector into the unit box (degenerate dims map to 0)."""
        span = np.where(self.high > self.low, self.high - self.low, 1.0)
        return (vector - self.low) / span

    def denormalize(self, unit: jax.Array) -> jax.Array:
        return self.low + unit * (self.high - self.low)

    @staticmethod
    def _concat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.ravel(p) for p in parts]).astype(np.float32) if parts else np.zeros(0, np.float32)


def stack_tasks(tasks: Sequence[Any]) -> Any:
    """Stack a list of params into one batched params pytree (a task set)."""
    return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *tasks)


def index_tasks(tasks: Any, idx: jax.Array) -> Any:
    """Select tasks from a batched params pytree by index (jit-friendly)."""
    return jax.tree.map(lambda x: x[idx], tasks)
