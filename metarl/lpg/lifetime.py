"""Agent lifetimes on one level: ``train(key, [meta_params,] level_params, num_updates, lifetime=None)``.

A lifetime is ``num_updates`` (static) updates, each one rollout of
``num_envs x num_steps`` steps that continues the previous one (episodes span
updates), followed by an evaluation of the stochastic policy: ``eval_episodes``
fresh envs play one episode each (:func:`metarl.agents.policy.evaluate_policy`,
the loop every evaluator and baseline uses). ``lifetime`` (traced, default
``num_updates``) masks updates beyond it, so log-uniform lifetimes can be
sampled inside one compiled program: the agent stops learning, the loop
still runs to ``num_updates``.

:class:`LPGLifetime` also exposes its single update and rollout so that the
meta-gradient path (:mod:`metarl.lpg.meta_gradient`) can differentiate through them.
"""

from __future__ import annotations

import abc
from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax
from flax import struct

from envs.wrappers import LogWrapper
from metarl.agents import policy
from metarl.lpg import agents as A
from metarl.lpg.rule import LPGInputs, LPGRule


@struct.dataclass
class LifetimeResult:
    final_return: jax.Array  # mean evaluation return of the trained policy
    returns: jax.Array  # [num_updates] mean return of episodes ended in each update (last value carried)
    agent_params: Any


@struct.dataclass
class Transition:
    """Time-major ``[T, B, ...]`` rollout; ``extras`` holds agent-specific per-step outputs."""

    obs: jax.Array
    action: jax.Array
    action_prob: jax.Array
    reward: jax.Array
    terminated: jax.Array
    done: jax.Array
    episode_return: jax.Array  # return of the episode that ended at t (valid where done)
    extras: Any


@struct.dataclass
class AgentState:
    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array
    key: jax.Array
    last_return: jax.Array  # carried when an update sees no finished episode
    update_index: jax.Array  # int32 updates attempted so far


class Lifetime(abc.ABC):
    """Shared rollout, evaluation and masking; subclasses define the agent and its gradient."""

    def __init__(self, config: A.AgentConfig, env: Any, optimizer: Any = None):
        if not isinstance(config, A.AgentConfig):
            raise ValueError(f"agent_config must be an AgentConfig, got {type(config).__name__}")
        self.config = config
        self.env = env
        self.log_env = LogWrapper(env)
        self.slot = A.OptimizerSlot(config, optimizer)
        self.obs_dim = int(env.observation_space(env.default_params).shape[0])
        self.num_actions = int(env.action_space(env.default_params).n)
        self.tabular = config.kind == "tabular"

    def observe(self, obs: jax.Array) -> jax.Array:
        """What the agent sees (and rollouts store): tabular agents get ``[index, time]``."""
        obs = obs.astype(jnp.float32)
        return A.encode_tabular(obs) if self.tabular else obs

    # --- to override ------------------------------------------------------------------
    @abc.abstractmethod
    def init_params(self, key: jax.Array) -> Any:
        """The agent's initial parameters (a dict of networks with an ``"actor"``)."""

    def extras(self, params: Any, obs: jax.Array, next_obs: jax.Array) -> Any:
        return {}

    # --- shared -----------------------------------------------------------------------
    def init_state(self, key: jax.Array, level_params: Any, optimizer_params: Any) -> AgentState:
        k_params, k_env, k_run = jax.random.split(key, 3)
        params = self.init_params(k_params)
        opt_state = self.slot.transform(optimizer_params).init(params)
        obs, env_state = jax.vmap(self.log_env.reset, in_axes=(0, None))(
            jax.random.split(k_env, self.config.num_envs), level_params
        )
        return AgentState(params, opt_state, env_state, self.observe(obs), k_run,
                          jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))

    def rollout(self, params: Any, env_state: Any, obs: jax.Array, key: jax.Array, level_params: Any,
                extras: Callable | None = None):
        """``num_steps`` steps of the stochastic policy in every env: ``(Transition, env_state, obs)``.

        ``extras(params, obs, next_obs)`` (default :meth:`extras`) adds per-step outputs.
        """
        extras = self.extras if extras is None else extras
        t, n = self.config.num_steps, self.config.num_envs
        k_act, k_env = jax.random.split(key)
        gumbel = jax.random.gumbel(k_act, (t, n, self.num_actions), jnp.float32)  # one draw per rollout
        env_keys = jax.random.split(k_env, (t, n))
        step_env = jax.vmap(self.log_env.step, in_axes=(0, 0, 0, None))

        def step(carry, xs):
            env_state, obs = carry
            noise, keys = xs
            logits = A.policy_logits(params, obs)
            action = jnp.argmax(logits + noise, axis=-1)
            prob = jnp.take_along_axis(jax.nn.softmax(logits, -1), action[:, None], -1)[:, 0]
            next_obs, env_state, reward, terminated, truncated, info = step_env(keys, env_state, action, level_params)
            done = jnp.logical_or(terminated, truncated)
            final_obs = self.observe(info["final_observation"])
            transition = Transition(
                obs=obs, action=action, action_prob=prob, reward=reward.astype(jnp.float32),
                terminated=terminated, done=done, episode_return=info["returned_episode_return"],
                extras=extras(params, obs, final_obs),
            )
            return (env_state, self.observe(next_obs)), transition

        (env_state, obs), traj = jax.lax.scan(step, (env_state, obs), (gumbel, env_keys))
        return traj, env_state, obs

    def evaluate(self, params: Any, key: jax.Array, level_params: Any) -> jax.Array:
        """Mean undiscounted return of one episode in each of ``eval_episodes`` fresh envs (stochastic policy)."""
        act = policy.categorical_act(lambda p, obs: A.policy_logits(p, self.observe(obs)))
        episodes = policy.evaluate_policy(act, params, self.env, level_params, key, self.config.eval_episodes)
        return jnp.mean(episodes["return"])

    def apply_grads(self, state: AgentState, grads: Any, key: jax.Array, progress: jax.Array,
                    optimizer_params: Any) -> tuple[Any, Any]:
        grads = A.clip_per_module(grads, self.config.max_grad_norm)
        tx = self.slot.transform(optimizer_params)
        updates, opt_state = tx.update(
            grads, state.opt_state, state.params, progress=progress, epoch_progress=jnp.zeros((), jnp.float32),
            key=key, dormancy=A.neutral_dormancy(state.params),
        )
        return optax.apply_updates(state.params, updates), opt_state

    @staticmethod
    def episode_mean(traj: Transition, last_return: jax.Array) -> jax.Array:
        count = jnp.sum(traj.done)
        total = jnp.sum(jnp.where(traj.done, traj.episode_return, 0.0))
        return jnp.where(count > 0, total / jnp.maximum(count, 1), last_return)

    def masked_step(self, old: AgentState, params: Any, opt_state: Any, active: jax.Array,
                    env_state: Any, obs: jax.Array, key: jax.Array, mean_return: jax.Array) -> AgentState:
        """Keep the new parameters only while ``active`` (the update lies inside the lifetime)."""
        keep = lambda new, prev: jnp.where(active, new, prev)  # noqa: E731
        return AgentState(
            params=jax.tree.map(keep, params, old.params),
            opt_state=jax.tree.map(keep, opt_state, old.opt_state),
            env_state=env_state, obs=obs, key=key, last_return=mean_return,
            update_index=old.update_index + 1,
        )

    def run(self, key: jax.Array, level_params: Any, num_updates: int, lifetime: Any,
            optimizer_params: Any, update: Callable) -> LifetimeResult:
        if isinstance(num_updates, bool) or not isinstance(num_updates, int) or num_updates < 1:
            raise ValueError(f"num_updates must be a positive int, got {num_updates!r}")
        k_init, k_opt, k_eval = jax.random.split(key, 3)
        optimizer_params = self.slot.params(k_opt, optimizer_params)
        lifetime = jnp.asarray(num_updates if lifetime is None else lifetime, jnp.float32)
        state = self.init_state(k_init, level_params, optimizer_params)

        def body(state, _):
            state = update(state, level_params, lifetime, optimizer_params)
            return state, state.last_return

        state, returns = jax.lax.scan(body, state, None, length=num_updates)
        final_return = self.evaluate(state.params, k_eval, level_params)
        return LifetimeResult(final_return=final_return, returns=returns, agent_params=state.params)


class LPGLifetime(Lifetime):
    """An agent (actor + prediction head, no critic) trained by an LPG rule."""

    def __init__(self, config: A.AgentConfig, env: Any, rule: LPGRule, optimizer: Any = None):
        super().__init__(config, env, optimizer)
        if not isinstance(rule, LPGRule):
            raise ValueError(f"rule must be an LPGRule, got {type(rule).__name__}")
        self.rule = rule

    def init_params(self, key: jax.Array) -> dict:
        return A.init_lpg_agent(key, self.config.kind, self.obs_dim, self.num_actions, self.rule.config.pred_dim)

    def extras(self, params, obs, next_obs):
        # y(s_t) and y(s_{t+1}) are rule inputs only: computed here, never differentiated
        return {"y": A.predictions(params, obs), "y_next": A.predictions(params, next_obs)}

    def rule_inputs(self, traj: Transition) -> LPGInputs:
        discount = self.config.gamma * (1.0 - traj.terminated.astype(jnp.float32))
        inputs = LPGInputs(reward=traj.reward, done=traj.done, discount=discount, action_prob=traj.action_prob,
                           y=traj.extras["y"], y_next=traj.extras["y_next"])
        return jax.lax.stop_gradient(inputs)

    def update(self, state: AgentState, meta_params: Any, level_params: Any, lifetime: jax.Array,
               optimizer_params: Any) -> tuple[AgentState, dict]:
        """One rollout and one LPG update; differentiable w.r.t. ``meta_params``."""
        key, k_roll, k_opt = jax.random.split(state.key, 3)
        traj, env_state, obs = self.rollout(state.params, state.env_state, state.obs, k_roll, level_params)
        progress = state.update_index.astype(jnp.float32) / jnp.maximum(lifetime, 1.0)
        pi_hat, y_hat = self.rule(meta_params, self.rule_inputs(traj), progress, lifetime)
        grads, aux = jax.grad(A.lpg_agent_loss, has_aux=True)(
            state.params, traj.obs, traj.action, pi_hat, y_hat, self.config.pred_coef)
        params, opt_state = self.apply_grads(state, grads, k_opt, progress, optimizer_params)
        active = state.update_index.astype(jnp.float32) < lifetime
        new_state = self.masked_step(state, params, opt_state, active, env_state, obs, key,
                                     self.episode_mean(traj, state.last_return))
        metrics = {**aux, "pi_hat_l2": jnp.mean(jnp.square(pi_hat)),
                   "y_hat_l2": jnp.mean(jnp.sum(jnp.square(y_hat), -1))}
        return new_state, metrics

    def train(self, key: jax.Array, meta_params: Any, level_params: Any, num_updates: int,
              lifetime: Any = None, optimizer_params: Any = None) -> LifetimeResult:
        def update(state, level_params, lifetime, optimizer_params):
            return self.update(state, meta_params, level_params, lifetime, optimizer_params)[0]

        return self.run(key, level_params, num_updates, lifetime, optimizer_params, update)


def make_lpg_lifetime(agent_config: A.AgentConfig, env: Any, rule: LPGRule, optimizer: Any = None) -> Callable:
    """``train(key, meta_params, level_params, num_updates, lifetime=None, optimizer_params=None) -> LifetimeResult``.

    Jitted with ``num_updates`` static; vmap it with ``functools.partial(train, num_updates=n)``.
    """
    lifetime = LPGLifetime(agent_config, env, rule, optimizer)
    return jax.jit(lifetime.train, static_argnames=("num_updates",))
