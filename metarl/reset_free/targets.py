"""What a transition bootstraps from, in the reset-free stream.

Only reaching the phase's goal is terminal. A phase timeout, a RISC switch and
an intervention are truncations: the state still has a future, so the TD target
keeps ``gamma * Q'(s')`` (RISC's "timeout-aware bootstrapping"). The released
EARL SAC configs instead treated every truncation as terminal
(``trunc_as_terminal: true``), which the paper's ablation shows hurting;
``bootstrap="timeout_as_terminal"`` reproduces that variant.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BOOTSTRAP_MODES = ("correct", "timeout_as_terminal")


def discount(terminated: jax.Array, truncated: jax.Array, gamma: float, bootstrap: str = "correct") -> jax.Array:
    """``gamma * (1 - done)`` with ``done`` = terminated (correct) or terminated or truncated."""
    if bootstrap not in BOOTSTRAP_MODES:
        raise ValueError(f"bootstrap={bootstrap!r} is unknown; expected one of {', '.join(BOOTSTRAP_MODES)}")
    done = terminated if bootstrap == "correct" else jnp.logical_or(terminated, truncated)
    return gamma * (1.0 - jnp.asarray(done, jnp.float32))


def success_target(success: jax.Array, next_p_success: jax.Array, gamma: float) -> jax.Array:
    """The success critic's target ``1[success] + (1 - 1[success]) * gamma * P'(s')``.

    It bootstraps through every truncation: a switch or a timeout does not make
    the goal unreachable from ``s'``.
    """
    s = jnp.asarray(success, jnp.float32)
    return s + (1.0 - s) * gamma * next_p_success
