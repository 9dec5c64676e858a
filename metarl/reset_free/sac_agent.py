"""RISC's continuous-action agent: SAC plus a twin-headed success critic over ``(obs, action)``.

:class:`SACAgent` implements the reset-free agent interface of
:mod:`metarl.reset_free.agents` (``init``, ``act``, ``deploy``, ``p_success``,
``learn`` and the replay settings) on top of :class:`metarl.agents.sac.SAC`: its
parameters, optimisers and :meth:`~metarl.agents.sac.SAC.gradient_step` (critics,
actor, temperature, Polyak targets) are reused as they are.

* **Bootstrapping.** The runner stores ``discount = gamma * (1 - done)`` with ``done``
  chosen by its bootstrapping rule; SAC's step is given ``terminated = 1 - discount /
  gamma``, so a switch, a phase timeout or an intervention bootstraps exactly when the
  rule says so (with ``gamma = 0`` nothing bootstraps anyway and ``terminated`` is 0).
* **Success critic** (RISC): two ``Q_s(s, a)`` heads laid out as SAC's twin critics
  (:func:`metarl.agents.sac_networks.init_critics`, same hidden sizes), regressed by MSE
  on both heads towards ``1[success] + (1 - 1[success]) * gamma * min_heads Q_s'(s', a')``
  with ``a' ~ pi(s')`` (the actor after this step's SAC update) and a Polyak-averaged copy
  ``Q_s'`` (:func:`metarl.reset_free.targets.success_target`: it bootstraps through every
  truncation and has no reward scale). ``P_succ(s)`` is the minimum over the heads, averaged
  over ``critic_samples`` actions drawn from the policy, clipped to [0, 1].
* **Acting.** Uniform actions in [-1, 1] before ``learning_starts`` env steps, then
  tanh-Gaussian samples; the deployed policy is ``tanh(mean)`` (``eval_greedy``) or a sample.
* **Replay settings.** ``batch_size``, ``buffer_size``, ``learning_starts`` and ``gamma``
  come from :class:`~metarl.agents.sac_config.SACConfig`; ``train_every = 1``: one gradient
  step per env step (SAC's UTD of 1; SACConfig's ``num_envs``, ``steps_per_update``,
  ``gradient_steps`` and ``total_timesteps`` only pass its validation here).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from gymnax.environments import spaces

from metarl.agents.env_spec import env_name
from metarl.agents.pytrees import strongly_typed
from metarl.agents.sac import SAC
from metarl.agents.sac_config import SACConfig
from metarl.agents.sac_loss import polyak
from metarl.agents.sac_networks import actor_mean_log_std, critic_values, init_critics, sample_action
from metarl.reset_free.success_critic import SuccessCriticState
from metarl.reset_free.targets import success_target

_SNAP = 1e-6  # terminated within this of 0 or 1 is exactly 0 or 1


@struct.dataclass
class SACAgentState:
    params: Any  # {"actor", "critic"}: SAC's actor and twin critics
    target_critic: Any  # Polyak copy of params["critic"]
    log_alpha: jax.Array  # float32 scalar, SAC's log temperature
    opt_state: Any  # {"actor", "critic", "alpha"} optax states
    critic: SuccessCriticState  # the success heads (init_critics layout), their Polyak copy and Adam state

    @property
    def learner(self) -> tuple:
        """``(params, target_critic, log_alpha, opt_state)``: what :meth:`SAC.gradient_step` takes."""
        return self.params, self.target_critic, self.log_alpha, self.opt_state


def _unit_box(space: Any) -> bool:
    if not isinstance(space, spaces.Box) or len(tuple(space.shape)) != 1:
        return False
    low, high = (np.broadcast_to(np.asarray(bound), space.shape) for bound in (space.low, space.high))
    return bool(np.all(low == -1.0) and np.all(high == 1.0))


class SACAgent:
    """SAC (one gradient step per env step) plus RISC's success critic; see the module docstring."""

    def __init__(self, cfg: SACConfig, env: Any, env_params: Any, eval_greedy: bool = True,
                 critic_lr: float = 3e-4, critic_tau: float = 0.005, critic_samples: int = 4):
        space = env.action_space(env_params)
        if not _unit_box(space):
            raise ValueError(f"SACAgent needs a flat Box action space in [-1, 1] (the runner stores the action it "
                             f"passes to the env); {env_name(env)} has {space!r}")
        if cfg.reset_every:
            raise ValueError(f"agent.reset_every={cfg.reset_every}: the reset-free SAC agent has no periodic resets "
                             "(set it to 0)")
        if cfg.colored_noise:
            raise ValueError(f"agent.noise_exponent={cfg.noise_exponent}: the reset-free SAC agent acts with i.i.d. "
                             "noise only (set it to 0)")
        if critic_samples < 1:
            raise ValueError(f"SACAgent: critic_samples must be at least 1, got {critic_samples}")
        self.sac = SAC(cfg, env, env_params)
        self.cfg, self.eval_greedy, self.critic_samples = cfg, eval_greedy, int(critic_samples)
        self.critic_tau = critic_tau
        self.obs_dim, self.action_dim = self.sac.obs_dim, self.sac.action_dim
        self.critic_tx = optax.adam(critic_lr)
        self.example_action = jnp.zeros((self.action_dim,), jnp.float32)
        self.gamma, self.batch_size, self.buffer_size = cfg.gamma, cfg.batch_size, cfg.buffer_size
        self.learning_starts = cfg.learning_starts
        self.train_every = 1  # SACConfig has no such field: one gradient step per env step (UTD 1)

    # --- state ------------------------------------------------------------------------------------------
    def init(self, key: jax.Array) -> SACAgentState:
        cfg, tx = self.cfg, self.sac.tx
        k_actor, k_critic, k_success = jax.random.split(key, 3)
        params = self.sac.init_params(k_actor, k_critic)
        log_alpha = jnp.log(jnp.asarray(cfg.init_alpha, jnp.float32))
        opt_state = {"actor": tx["actor"].init(params["actor"]), "critic": tx["critic"].init(params["critic"]),
                     "alpha": tx["alpha"].init(log_alpha)}
        success = init_critics(k_success, self.obs_dim, self.action_dim, cfg.hidden_sizes, cfg.layer_norm,
                               cfg.task_heads)
        critic = SuccessCriticState(success, success, self.critic_tx.init(success))
        return strongly_typed(SACAgentState(params, params["critic"], log_alpha, opt_state, critic))

    # --- policy -----------------------------------------------------------------------------------------
    def _mean_log_std(self, actor: Any, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return actor_mean_log_std(actor, jnp.asarray(obs, jnp.float32), self.cfg.activation, self.cfg.task_heads)

    def _sample(self, actor: Any, obs: jax.Array, key: jax.Array) -> jax.Array:
        mean, log_std = self._mean_log_std(actor, obs)
        return sample_action(mean, log_std, jax.random.normal(key, mean.shape))[0]

    def act(self, state: SACAgentState, obs: jax.Array, key: jax.Array, step: jax.Array) -> jax.Array:
        """Uniform in [-1, 1] while ``step < learning_starts`` (env steps so far), else a tanh-Gaussian sample."""
        k_uniform, k_policy = jax.random.split(key)
        sample = self._sample(state.params["actor"], obs, k_policy)
        uniform = jax.random.uniform(k_uniform, sample.shape, jnp.float32, -1.0, 1.0)
        return jnp.where(step < self.learning_starts, uniform, sample)

    def deploy(self, state: SACAgentState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """``tanh(mean)`` when ``eval_greedy``, else a sample."""
        if self.eval_greedy:
            return jnp.tanh(self._mean_log_std(state.params["actor"], obs)[0])
        return self._sample(state.params["actor"], obs, key)

    # --- success critic ---------------------------------------------------------------------------------
    def _success_values(self, heads: Any, obs: jax.Array, action: jax.Array) -> jax.Array:
        """``[2, ...]`` values of the two success heads."""
        return critic_values(heads, jnp.asarray(obs, jnp.float32), action, self.cfg.activation, self.cfg.task_heads)

    def p_success(self, state: SACAgentState, obs: jax.Array, key: jax.Array) -> jax.Array:
        """RISC's ``P_succ``: min over heads, mean over ``critic_samples`` policy actions, clipped to [0, 1].

        ``obs``: ``[obs_dim]`` or ``[..., obs_dim]``; the result has the leading shape of ``obs``."""
        obs = jnp.asarray(obs, jnp.float32)
        mean, log_std = self._mean_log_std(state.params["actor"], obs)
        noise = jax.random.normal(key, (self.critic_samples,) + mean.shape)
        actions, _ = sample_action(mean, log_std, noise)  # [S, ..., A]
        obs_s = jnp.broadcast_to(obs, (self.critic_samples,) + obs.shape)
        per_sample = jnp.min(self._success_values(state.critic.params, obs_s, actions), axis=0)  # [S, ...]
        return jnp.clip(jnp.mean(per_sample, axis=0), 0.0, 1.0)

    def success_critic_step(self, critic: SuccessCriticState, actor: Any, batch: dict,
                            key: jax.Array) -> tuple[SuccessCriticState, jax.Array]:
        """One Adam step of both success heads on ``batch`` (obs, action, success, next_obs); ``(state, MSE)``."""
        next_action = self._sample(actor, batch["next_obs"], key)
        next_value = jnp.min(self._success_values(critic.target, batch["next_obs"], next_action), axis=0)
        target = jax.lax.stop_gradient(success_target(batch["success"], next_value, self.gamma))

        def loss_fn(heads: Any) -> jax.Array:
            return jnp.mean(jnp.square(self._success_values(heads, batch["obs"], batch["action"]) - target[None]))

        loss, grads = jax.value_and_grad(loss_fn)(critic.params)
        updates, opt_state = self.critic_tx.update(grads, critic.opt_state, critic.params)
        params = optax.apply_updates(critic.params, updates)
        return SuccessCriticState(params, polyak(critic.target, params, self.critic_tau), opt_state), loss

    # --- learning ---------------------------------------------------------------------------------------
    def terminated(self, discount: jax.Array) -> jax.Array:
        """SAC's ``terminated`` from the runner's ``discount = gamma * (1 - done)`` (0 everywhere when gamma = 0)."""
        discount = jnp.asarray(discount, jnp.float32)
        if self.gamma == 0:
            return jnp.zeros_like(discount)
        done = jnp.clip(1.0 - discount / self.gamma, 0.0, 1.0)
        # XLA may divide by multiplying with 1/gamma: snap the last-bit error of the runner's 0 and gamma
        return jnp.where(done < _SNAP, 0.0, jnp.where(done > 1.0 - _SNAP, 1.0, done))

    def learn(self, state: SACAgentState, batch: dict, key: jax.Array, critic: bool) -> tuple[SACAgentState, jax.Array]:
        """One SAC gradient step and, when ``critic``, one success-critic step; ``(state, SAC's critic loss)``."""
        k_sac, k_critic = jax.random.split(key)
        sac_batch = {"obs": batch["obs"], "action": batch["action"], "reward": batch["reward"],
                     "next_obs": batch["next_obs"], "terminated": self.terminated(batch["discount"])}
        (params, target, log_alpha, opt_state), metrics = self.sac.gradient_step(state.learner, sac_batch, k_sac)
        success = state.critic
        if critic:
            success, _ = self.success_critic_step(success, params["actor"], batch, k_critic)
        return SACAgentState(params, target, log_alpha, opt_state, success), metrics["critic_loss"]
