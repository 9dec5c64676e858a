"""RISC's success critic for a discrete-action agent: ``P_succ(s, g)`` as a twin-headed Q-function.

Each head estimates, per action, the discounted probability of reaching the
goal in the observation (a Q-function of the reward ``1[success]``, terminal at
success). The estimate for a state is the minimum over the two heads at the
agent's greedy action (RISC: min over heads, mean over the policy's actions; the
greedy action is the policy being learned and deployed). The target
(:func:`metarl.reset_free.targets.success_target`) bootstraps through every
truncation and uses a Polyak-averaged copy of the heads.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from metarl.agents import networks
from metarl.reset_free.targets import success_target

HEADS = 2


@struct.dataclass
class SuccessCriticState:
    params: Any  # the heads' MLPs, stacked on a leading axis of size HEADS
    target: Any
    opt_state: Any


@dataclasses.dataclass(frozen=True)
class SuccessCritic:
    obs_dim: int
    num_actions: int
    hidden: tuple[int, ...] = (256, 256)
    lr: float = 3e-4
    gamma: float = 0.95
    tau: float = 0.005

    def _tx(self) -> optax.GradientTransformation:
        return optax.adam(self.lr)

    def init(self, key: jax.Array) -> SuccessCriticState:
        keys = jax.random.split(key, HEADS)
        params = jax.vmap(lambda k: networks.init_mlp(k, self.obs_dim, self.hidden, self.num_actions, 1.0))(keys)
        return SuccessCriticState(params, params, self._tx().init(params))

    def values(self, params: Any, obs: jax.Array) -> jax.Array:
        """``[HEADS, ..., num_actions]`` per-head, per-action success values."""
        return jax.vmap(lambda p: networks.apply_mlp(p, obs, "relu")[0])(params)

    def p_success(self, params: Any, obs: jax.Array, greedy_action: jax.Array) -> jax.Array:
        """``min_heads Q_s(obs, greedy_action)``, clipped to [0, 1]."""
        per_head = self.values(params, obs)
        chosen = jnp.take_along_axis(per_head, greedy_action[None, ..., None], axis=-1)[..., 0]
        return jnp.clip(jnp.min(chosen, axis=0), 0.0, 1.0)

    def learn(self, state: SuccessCriticState, batch: dict, next_greedy: jax.Array) -> tuple[SuccessCriticState, dict]:
        """One gradient step on ``batch`` (obs, action, success, next_obs); ``next_greedy`` = agent's a* at next_obs."""
        next_p = jax.lax.stop_gradient(self.p_success(state.target, batch["next_obs"], next_greedy))
        target = success_target(batch["success"], next_p, self.gamma)

        def loss_fn(params: Any) -> jax.Array:
            per_head = self.values(params, batch["obs"])  # [HEADS, B, A]
            taken = jnp.take_along_axis(per_head, batch["action"][None, :, None], axis=-1)[..., 0]
            return jnp.mean(jnp.square(taken - target[None]))

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        updates, opt_state = self._tx().update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        target_params = optax.incremental_update(params, state.target, self.tau)
        return SuccessCriticState(params, target_params, opt_state), {"success_critic_loss": loss}
