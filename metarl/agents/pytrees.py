"""Small pytree utilities shared by the agents."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def strongly_typed(tree: Any) -> Any:
    """``tree`` with every weakly typed array made strong (same dtype and values).

    Envs and configs put Python scalars in states (``time = 0``, ``dt = 0.05``),
    which JAX keeps as weakly typed. A jitted update returns some of them strong,
    so the second call of the same update on its own output would trace and
    compile again; a checkpoint restored by orbax is strong too. Agents return
    their initial state strongly typed so every call sees one signature.
    """
    return jax.tree.map(lambda x: jnp.asarray(x, dtype=x.dtype) if getattr(x, "weak_type", False) else x, tree)
