"""RISC's switching rule (*Intelligent Switching for Reset-Free RL*, Patil et al. 2024).

A phase (forward towards the task goal, or backward towards the initial state)
may end early when the agent is already confident it can reach the phase's goal:
after ``n >= minimum_steps`` steps of the phase it switches with probability

    P(switch) = trajectory_proportion * P_succ(s, g) * (1 - c**n)

where ``P_succ`` is the success critic's estimate at the current state and
``c`` the conservative factor. The ``1 - c**n`` factor keeps short phases from
being cut off; ``trajectory_proportion`` is applied per step, as the released
code effectively does (its per-phase coin is redrawn every step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def switch_probability(p_success: jax.Array, phase_steps: jax.Array, conservative_factor: float,
                       minimum_steps: int, trajectory_proportion: float = 1.0) -> jax.Array:
    """The probability of ending the phase now, ``n = phase_steps`` steps into it."""
    p = jnp.clip(p_success, 0.0, 1.0)
    n = jnp.asarray(phase_steps, jnp.float32)
    prob = trajectory_proportion * p * (1.0 - jnp.power(conservative_factor, n))
    return jnp.where(phase_steps >= minimum_steps, prob, 0.0)


def draw_switch(key: jax.Array, p_success: jax.Array, phase_steps: jax.Array, conservative_factor: float,
                minimum_steps: int, trajectory_proportion: float = 1.0) -> jax.Array:
    """A Bernoulli draw of :func:`switch_probability` (bool)."""
    prob = switch_probability(p_success, phase_steps, conservative_factor, minimum_steps, trajectory_proportion)
    return jax.random.uniform(key, jnp.shape(prob)) < prob
