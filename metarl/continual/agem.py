"""A-GEM (Chaudhry et al., 2019, *Efficient Lifelong Learning with A-GEM*) as a gradient transformation.

Each step draws a minibatch from an episodic memory of earlier tasks, takes the
gradient ``g_ref`` of the memory loss there, and projects the current gradient
``g`` so that, to first order, the step does not increase that loss:

    g̃ = g − (gᵀg_ref / g_refᵀg_ref) · g_ref   if gᵀg_ref < 0,   else g

The memory is the replay buffer of :mod:`metarl.continual.replay` (filled at
every task end with states and the policy outputs and values the agent had
then), and the memory loss is its cloning loss: PPO cannot evaluate its
surrogate on old, off-policy transitions, so the constraint keeps the earlier
tasks' behaviour and values instead. (Continual World's A-GEM with SAC uses the
SAC actor and critic losses on stored transitions.) A buffer whose capacity is
at least the states offered per task times the number of tasks never evicts,
which makes it A-GEM's per-task episodic memory.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from metarl.continual.replay import ReplayState, buffer_init, memory_gradient


def project(grads: Any, ref: Any) -> Any:
    """A-GEM's projection of ``grads`` against the reference gradient ``ref`` (pytrees of one structure)."""
    dot = optax.tree_utils.tree_vdot(grads, ref)
    ref_sq = optax.tree_utils.tree_vdot(ref, ref)
    scale = jnp.where(dot < 0, dot / jnp.maximum(ref_sq, jnp.finfo(jnp.float32).tiny), 0.0)
    return jax.tree.map(lambda g, r: g - scale * r, grads, ref)


def agem_projection(
    capacity: int, obs_dim: int, out_dim: int, batch_size: int, activation: str, continuous: bool,
    value_coef: float = 0.5, seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
    """Projects the incoming gradient against the cloning gradient on ``batch_size`` memory samples.

    An empty memory gives a zero reference gradient, and the gradient passes unchanged.
    """

    def init(params):
        # replay's state type, so that add_to_replay fills this memory too; its coef is unused here
        return ReplayState(buffer_init(capacity, obs_dim, out_dim), jnp.ones((), jnp.float32),
                           jnp.zeros((), jnp.int32), jax.random.PRNGKey(seed))

    def update(updates, state, params=None, **extra):
        ref = memory_gradient(state, params, batch_size, activation, continuous, value_coef)
        return project(updates, ref), state._replace(step=state.step + 1)

    return optax.GradientTransformationExtraArgs(init, update)
