"""A continual method plugged into PPO's hooks, with the runner's bookkeeping.

PPO keeps :class:`ContinualState` in ``state.hook_state``: the initial weights
(for distance-from-init), the method's own state, a ring buffer of the envs'
observations over the last rollouts (ReDo, EWC's Fisher, replay and the
diagnostics read it), the update count, a key for the method's randomness and
the task being trained.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.agents.ppo_hooks import PPOHooks
from metarl.continual.method_base import Method, MethodContext, TaskSwitch, UpdateStep


@struct.dataclass
class ContinualState:
    init_params: Any
    method_state: Any
    obs_buffer: jax.Array  # [K, num_envs, obs_dim] raw observations of the last K rollouts
    updates: jax.Array  # () int32
    key: jax.Array
    task_id: jax.Array  # () int32, task being trained


class ContinualHooks(PPOHooks):
    def __init__(self, method: Method, ctx: MethodContext, buffer_rollouts: int, first_task: int):
        self.method, self.ctx = method, ctx
        self.buffer_rollouts, self.first_task = buffer_rollouts, first_task

    def recent_obs(self, state: Any) -> jax.Array:
        """The buffered observations, flat and as the networks see them."""
        return self.ctx.observe(state, state.hook_state.obs_buffer.reshape(-1, self.ctx.spec.obs_dim))

    def init(self, state: Any, key: jax.Array) -> Any:
        init_params = state.params
        state, method_state = self.method.init(self.ctx, state)
        return state.replace(hook_state=ContinualState(
            init_params=init_params,
            method_state=method_state,
            obs_buffer=jnp.broadcast_to(state.obs, (self.buffer_rollouts,) + state.obs.shape),
            updates=jnp.zeros((), jnp.int32),
            key=key,
            task_id=jnp.asarray(self.first_task, jnp.int32),
        ))

    def loss_extra(self, params: Any, batch: Any, hook_state: ContinualState) -> jax.Array | None:
        return self.method.loss_extra(self.ctx, params, batch, hook_state.method_state)

    def after_update(self, state: Any) -> tuple[Any, dict[str, jax.Array]]:
        hs = state.hook_state
        key, k_method = jax.random.split(hs.key)
        hs = hs.replace(updates=hs.updates + 1, key=key,
                        obs_buffer=jnp.concatenate([hs.obs_buffer[1:], state.obs[None]], axis=0))
        state = state.replace(hook_state=hs)
        step = UpdateStep(index=hs.updates, key=k_method, recent_obs=self.recent_obs(state))
        state, method_state, log = self.method.after_update(self.ctx, state, hs.method_state, step)
        state = state.replace(hook_state=hs.replace(method_state=method_state))
        return state, {f"intervention_{name}": value for name, value in log.items()}

    def task_switch(self, state: Any, key: jax.Array, happened: jax.Array, next_task: jax.Array) -> tuple[Any, jax.Array]:
        """The method's switch hook; the hook state then tracks ``next_task``."""
        hs = state.hook_state
        switch = TaskSwitch(key=key, happened=happened, finished_task=hs.task_id, recent_obs=self.recent_obs(state))
        state, method_state, fired = self.method.on_task_switch(self.ctx, state, hs.method_state, switch)
        hs = hs.replace(method_state=method_state, task_id=jnp.asarray(next_task, jnp.int32))
        return state.replace(hook_state=hs), fired
