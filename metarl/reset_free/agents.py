"""The agents a reset-free runner drives, behind one small interface.

An agent holds its learner and RISC's success critic in one pytree state and offers

* ``init(key) -> state``;
* ``act(state, obs, key, step) -> action`` (exploring) and ``deploy(state, obs, key) -> action``
  (the deployed policy of EARL's evaluation);
* ``p_success(state, obs, key) -> [0, 1]``: the success critic's estimate for the goal in ``obs``;
* ``learn(state, batch, key, critic: bool) -> (state, loss)``: one gradient step on a replay batch
  (``obs, action, reward, discount, next_obs, success``; ``discount`` already carries the run's
  bootstrapping rule), and one for the success critic when ``critic``;
* ``example_action``, ``gamma``, ``batch_size``, ``buffer_size``, ``learning_starts``, ``train_every``.

:class:`DQNAgent` is RISC's gridworld agent (discrete actions).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from metarl.agents import dqn
from metarl.reset_free.success_critic import SuccessCritic, SuccessCriticState


@struct.dataclass
class DQNAgentState:
    learner: dqn.DQNLearner
    critic: SuccessCriticState


class DQNAgent:
    """Epsilon-greedy DQN (double DQN by default) plus the twin-headed discrete success critic."""

    def __init__(self, cfg: dqn.DQNConfig, obs_dim: int, num_actions: int, eval_epsilon: float = 0.0,
                 critic_lr: float = 3e-4, critic_tau: float = 0.005):
        self.cfg, self.obs_dim, self.num_actions, self.eval_epsilon = cfg, obs_dim, num_actions, eval_epsilon
        self.critic = SuccessCritic(obs_dim, num_actions, tuple(cfg.hidden_sizes), critic_lr, cfg.gamma, critic_tau)
        self.example_action = jnp.int32(0)
        self.gamma, self.batch_size, self.buffer_size = cfg.gamma, cfg.batch_size, cfg.buffer_size
        self.learning_starts, self.train_every = cfg.learning_starts, cfg.train_every

    def init(self, key: jax.Array) -> DQNAgentState:
        k_q, k_critic = jax.random.split(key)
        return DQNAgentState(dqn.init_learner(k_q, self.obs_dim, self.num_actions, self.cfg), self.critic.init(k_critic))

    def act(self, state: DQNAgentState, obs: jax.Array, key: jax.Array, step: jax.Array) -> jax.Array:
        return dqn.act(state.learner.params, obs, key, dqn.epsilon_at(self.cfg, step))

    def deploy(self, state: DQNAgentState, obs: jax.Array, key: jax.Array) -> jax.Array:
        return dqn.act(state.learner.params, obs, key, jnp.float32(self.eval_epsilon))

    def _greedy(self, params: Any, obs: jax.Array) -> jax.Array:
        return jnp.argmax(dqn.q_values(params, obs), axis=-1).astype(jnp.int32)

    def p_success(self, state: DQNAgentState, obs: jax.Array, key: jax.Array) -> jax.Array:
        return self.critic.p_success(state.critic.params, obs, self._greedy(state.learner.params, obs))

    def learn(self, state: DQNAgentState, batch: dict, key: jax.Array, critic: bool) -> tuple[DQNAgentState, jax.Array]:
        learner, metrics = dqn.learn(state.learner, {k: batch[k] for k in ("obs", "action", "reward", "discount",
                                                                            "next_obs")}, self.cfg)
        critic_state = state.critic
        if critic:
            critic_state, _ = self.critic.learn(critic_state, batch, self._greedy(learner.params, batch["next_obs"]))
        return DQNAgentState(learner, critic_state), metrics["loss"]
