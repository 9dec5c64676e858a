"""A2C on one level: the antagonist for algorithmic regret and the LPG baseline.

Tabular actor and critic with SGD (lr 40 / 4) or an MLP with Adam 1e-3;
GAE(λ=0.95) that bootstraps through time limits, entropy 0.01, per-module
gradient clip 0.5, 64 envs x 20 steps per update (docs/algorithms.md §1.2).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from metarl.agents.gae import gae
from metarl.lpg import agents as A
from metarl.lpg.lifetime import AgentState, Lifetime, LifetimeResult


class A2CLifetime(Lifetime):
    def init_params(self, key: jax.Array) -> dict:
        return A.init_a2c_agent(key, self.config.kind, self.obs_dim, self.num_actions)

    def extras(self, params, obs, next_obs):
        return {"value": A.values(params, obs), "next_value": A.values(params, next_obs)}

    def update(self, state: AgentState, level_params: Any, lifetime: jax.Array,
               optimizer_params: Any) -> tuple[AgentState, dict]:
        cfg = self.config
        key, k_roll, k_opt = jax.random.split(state.key, 3)
        traj, env_state, obs = self.rollout(state.params, state.env_state, state.obs, k_roll, level_params)
        advantages, targets = gae(traj.reward, traj.extras["value"], traj.extras["next_value"],
                                  traj.terminated, traj.done, cfg.gamma, cfg.gae_lambda)
        grads, aux = jax.grad(A.a2c_loss, has_aux=True)(
            state.params, traj.obs, traj.action, advantages, targets, cfg.ent_coef)
        progress = state.update_index.astype(jnp.float32) / jnp.maximum(lifetime, 1.0)
        params, opt_state = self.apply_grads(state, grads, k_opt, progress, optimizer_params)
        active = state.update_index.astype(jnp.float32) < lifetime
        new_state = self.masked_step(state, params, opt_state, active, env_state, obs, key,
                                     self.episode_mean(traj, state.last_return))
        return new_state, aux

    def train(self, key: jax.Array, level_params: Any, num_updates: int, lifetime: Any = None,
              optimizer_params: Any = None) -> LifetimeResult:
        def update(state, level_params, lifetime, optimizer_params):
            return self.update(state, level_params, lifetime, optimizer_params)[0]

        return self.run(key, level_params, num_updates, lifetime, optimizer_params, update)


def make_a2c_lifetime(agent_config: A.AgentConfig, env: Any, optimizer: Any = None) -> Callable:
    """``train(key, level_params, num_updates, lifetime=None, optimizer_params=None) -> LifetimeResult`` (jitted)."""
    return jax.jit(A2CLifetime(agent_config, env, optimizer).train, static_argnames=("num_updates",))
