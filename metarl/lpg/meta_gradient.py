"""Meta-gradient training of an LPG rule (*Discovering Reinforcement Learning Algorithms*, §3.1).

One meta step, for every agent of a batch (one level each):

1. ``inner_updates`` (K = 5) LPG updates of the agent, kept differentiable
   w.r.t. the rule's meta-parameters (the rule's inputs are stop-gradient);
2. one more rollout of the updated agent; a separately trained value critic
   gives GAE advantages (stop-gradient) and takes one TD(λ) step on it;
3. meta-loss = ``-mean(log pi_K(a|s) · A)`` − β0·H(pi_K) − β1·H(y_K)
   + β2·mean(pi_hat²) + β3·mean(|y_hat|²), the last two averaged over the K updates;
4. the meta-gradient is averaged over the batch and applied with
   ``meta_optimizer`` (default clip 0.5 + Adam 1e-4).

Agents carry over between meta steps and restart (fresh parameters, critic
and optimizer state) once they reach their lifetime: on the same level, or on
a level from ``level_sampler(key, n)`` when one is given (GROOVE's "finished
agents are replaced inside the scan"). Each agent has its own lifetime:
``agent_lifetime``, or log-uniform in ``[lifetime_min, agent_lifetime]``
(TA-LPG); with ``stagger`` the first lifetimes are uniform in
``[inner_updates, agent_lifetime]`` so that the batch holds agents at every
stage of learning instead of all restarting together.
Deviation from GROOVE: its meta step computes the critic loss with the old
parameters, so its value critic never learns; here the critic is updated and kept.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from metarl.agents.gae import gae
from metarl.lpg import agents as A
from metarl.lpg.lifetime import AgentState, LPGLifetime
from metarl.lpg.rule import LPGRule

DEFAULT_REGULARISERS = (5e-2, 1e-3, 5e-3, 1e-3)  # β0 policy entropy, β1 y entropy, β2 |pi_hat|², β3 |y_hat|²


def default_meta_optimizer() -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(0.5), optax.adam(1e-4))


@struct.dataclass
class MetaGradientState:
    meta_params: Any
    meta_opt_state: Any
    agents: AgentState  # batched over levels
    critics: Any  # value-critic params, batched
    critic_opt_states: Any
    level_params: Any  # batched
    lifetimes: jax.Array  # [agents] float32: updates after which each agent restarts
    key: jax.Array
    step: jax.Array
    pool: Any = None  # LevelPool buffer when a teacher picks the levels
    slots: Any = None  # [agents] int32: each agent's pool slot


@dataclasses.dataclass
class MetaGradient:
    """``init(key, meta_params, level_params) -> state``; ``step(state) -> (state, metrics)``; ``run``."""

    agent_config: A.AgentConfig
    env: Any
    rule: LPGRule
    inner_updates: int = 5
    meta_optimizer: Any = None
    regularisers: tuple[float, float, float, float] = DEFAULT_REGULARISERS
    agent_lifetime: int = 250  # agent restarts after this many LPG updates (the max with lifetime_min)
    level_sampler: Any = None  # (key, n) -> n batched levels for restarted agents; None: same level
    lifetime_min: int | None = None  # set: log-uniform lifetimes in [lifetime_min, agent_lifetime]
    stagger: bool = False  # first lifetimes uniform in [inner_updates, agent_lifetime]
    teacher: Any = None  # curricula.level_pool.LevelPool: restarted agents draw from its pool instead

    def __post_init__(self):
        if isinstance(self.inner_updates, bool) or not isinstance(self.inner_updates, int) or self.inner_updates < 1:
            raise ValueError(f"inner_updates must be a positive int, got {self.inner_updates!r}")
        if len(self.regularisers) != 4 or any(b < 0 for b in self.regularisers):
            raise ValueError(f"regularisers must be four non-negative numbers, got {self.regularisers!r}")
        if not isinstance(self.agent_lifetime, int) or self.agent_lifetime < self.inner_updates:
            raise ValueError(f"agent_lifetime must be an int >= inner_updates, got {self.agent_lifetime!r}")
        if self.lifetime_min is not None and not 1 <= self.lifetime_min <= self.agent_lifetime:
            raise ValueError(f"lifetime_min must lie in [1, agent_lifetime={self.agent_lifetime}], "
                             f"got {self.lifetime_min!r}")
        self.meta_optimizer = default_meta_optimizer() if self.meta_optimizer is None else self.meta_optimizer
        self.lifetime = LPGLifetime(self.agent_config, self.env, self.rule)
        cfg = self.agent_config
        critic_tx = optax.adam(cfg.mlp_lr) if cfg.kind == "mlp" else optax.sgd(cfg.critic_lr)
        self.critic_tx = optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), critic_tx) \
            if cfg.max_grad_norm > 0 else critic_tx

    # --- agents -----------------------------------------------------------------------
    def _fresh_agent(self, key: jax.Array, level_params: Any) -> tuple[AgentState, Any, Any]:
        k_agent, k_critic = jax.random.split(key)
        agent = self.lifetime.init_state(k_agent, level_params, {})
        critic = A.init_network(k_critic, self.agent_config.kind, self.lifetime.obs_dim, 1, 1.0)
        return agent, critic, self.critic_tx.init(critic)

    def sample_lifetimes(self, key: jax.Array, n: int) -> jax.Array:
        """``agent_lifetime``, or log-uniform integers in ``[lifetime_min, agent_lifetime]``."""
        if self.lifetime_min is None or self.lifetime_min >= self.agent_lifetime:
            return jnp.full((n,), self.agent_lifetime, jnp.float32)
        u = jax.random.uniform(key, (n,), minval=jnp.log(float(self.lifetime_min)),
                               maxval=jnp.log(self.agent_lifetime + 1.0))
        return jnp.clip(jnp.floor(jnp.exp(u)), self.lifetime_min, self.agent_lifetime)

    def init(self, key: jax.Array, meta_params: Any, level_params: Any, pool: Any = None,
             slots: Any = None) -> MetaGradientState:
        """``level_params`` is a batch (leading axis = agents); with a teacher also its ``pool`` and the ``slots``."""
        if (self.teacher is None) != (pool is None) or (pool is None) != (slots is None):
            raise ValueError("MetaGradient.init: pass pool and slots exactly when a teacher is set")
        n = jax.tree.leaves(level_params)[0].shape[0]
        k_agents, k_life, k_stagger, k_run = jax.random.split(key, 4)
        agents, critics, critic_opt = jax.vmap(self._fresh_agent)(jax.random.split(k_agents, n), level_params)
        lifetimes = self.sample_lifetimes(k_life, n)
        if self.stagger:
            # shortened first lifetimes desynchronise the restarts
            first = jax.random.randint(k_stagger, (n,), self.inner_updates, self.agent_lifetime + 1)
            lifetimes = jnp.minimum(lifetimes, first.astype(jnp.float32))
        return MetaGradientState(meta_params, self.meta_optimizer.init(meta_params), agents, critics, critic_opt,
                                 level_params, lifetimes, k_run, jnp.zeros((), jnp.int32), pool, slots)

    # --- the meta-loss of one agent ------------------------------------------------------
    def agent_meta_loss(self, meta_params: Any, agent: AgentState, critic: Any, critic_opt: Any,
                        level_params: Any, lifetime: Any = None):
        cfg, lt = self.agent_config, self.lifetime
        horizon = jnp.float32(self.agent_lifetime) if lifetime is None else jnp.asarray(lifetime, jnp.float32)

        def inner(state, _):
            return lt.update(state, meta_params, level_params, horizon, {})

        agent, inner_metrics = jax.lax.scan(inner, agent, None, length=self.inner_updates)
        key, k_roll = jax.random.split(agent.key)

        def value_extras(_, obs, next_obs):
            return {"value": A.values({"critic": critic}, obs), "next_value": A.values({"critic": critic}, next_obs)}

        traj, env_state, obs = lt.rollout(jax.lax.stop_gradient(agent.params), agent.env_state, agent.obs, k_roll,
                                          level_params, extras=value_extras)
        advantages, targets = gae(traj.reward, traj.extras["value"], traj.extras["next_value"],
                                  traj.terminated, traj.done, cfg.gamma, cfg.gae_lambda)
        advantages, targets = jax.lax.stop_gradient((advantages, targets))

        critic_loss, critic_grads = jax.value_and_grad(
            lambda c: jnp.mean(jnp.square(A.values({"critic": c}, traj.obs) - targets)))(critic)
        updates, critic_opt = self.critic_tx.update(critic_grads, critic_opt, critic)
        critic = optax.apply_updates(critic, updates)

        logits = A.policy_logits(agent.params, traj.obs)
        pg_objective = jnp.mean(A.selected_log_prob(logits, traj.action) * advantages)
        policy_entropy = jnp.mean(A.entropy(jax.nn.softmax(logits, -1)))
        y_entropy = jnp.mean(A.entropy(A.predictions(agent.params, traj.obs)))
        b0, b1, b2, b3 = self.regularisers
        pi_l2, y_l2 = jnp.mean(inner_metrics["pi_hat_l2"]), jnp.mean(inner_metrics["y_hat_l2"])
        loss = -pg_objective - b0 * policy_entropy - b1 * y_entropy + b2 * pi_l2 + b3 * y_l2

        agent = jax.lax.stop_gradient(agent.replace(env_state=env_state, obs=obs, key=key))
        metrics = {"meta_loss": loss, "pg_objective": pg_objective, "policy_entropy": policy_entropy,
                   "y_entropy": y_entropy, "pi_hat_l2": pi_l2, "y_hat_l2": y_l2, "value_loss": critic_loss,
                   "train_return": agent.last_return,
                   "pvl": jnp.mean(jnp.maximum(advantages, 0.0))}  # PLR's positive value loss
        return loss, (agent, critic, critic_opt, metrics)

    def meta_loss(self, meta_params: Any, state: MetaGradientState):
        """Mean meta-loss over the batch and the per-agent results (used by :meth:`step`)."""
        per_agent = jax.vmap(self.agent_meta_loss, in_axes=(None, 0, 0, 0, 0, 0))
        losses, aux = per_agent(meta_params, state.agents, state.critics, state.critic_opt_states,
                                state.level_params, state.lifetimes)
        return jnp.mean(losses), aux

    # --- the meta step -------------------------------------------------------------------
    def step(self, state: MetaGradientState) -> tuple[MetaGradientState, dict]:
        (_, (agents, critics, critic_opt, metrics)), grads = jax.value_and_grad(self.meta_loss, has_aux=True)(
            state.meta_params, state)
        updates, meta_opt_state = self.meta_optimizer.update(grads, state.meta_opt_state, state.meta_params)
        meta_params = optax.apply_updates(state.meta_params, updates)

        # agents at the end of their lifetime restart: fresh parameters, critic, lifetime (and level)
        key, k_reset, k_level, k_life = jax.random.split(state.key, 4)
        n = agents.update_index.shape[0]
        done = agents.update_index.astype(jnp.float32) >= state.lifetimes
        pool, slots = state.pool, state.slots
        if self.teacher is not None:
            pool = self.teacher.report(pool, slots, done, metrics["train_return"], metrics["pvl"])
            pool, levels, new_slots = self.teacher.sample(pool, k_level, done)
            slots = jnp.where(done, new_slots, slots)
        elif self.level_sampler is not None:
            levels = self.level_sampler(k_level, n)
        else:
            levels = state.level_params
        fresh = jax.vmap(self._fresh_agent)(jax.random.split(k_reset, n), levels)

        def restart(new, old):
            return jnp.where(done.reshape((n,) + (1,) * (old.ndim - 1)), new, old)

        agents, critics, critic_opt, levels, lifetimes = jax.tree.map(
            restart, (*fresh, levels, self.sample_lifetimes(k_life, n)),
            (agents, critics, critic_opt, state.level_params, state.lifetimes))
        metrics = jax.tree.map(jnp.mean, metrics)
        metrics["finished"] = jnp.sum(done.astype(jnp.float32))
        metrics["meta_grad_norm"] = optax.global_norm(grads)
        state = state.replace(meta_params=meta_params, meta_opt_state=meta_opt_state, agents=agents,
                              critics=critics, critic_opt_states=critic_opt, level_params=levels,
                              lifetimes=lifetimes, key=key, step=state.step + 1, pool=pool, slots=slots)
        return state, metrics

    def run(self, key: jax.Array, meta_params: Any, level_params: Any, num_steps: int) -> tuple[Any, dict]:
        """``num_steps`` meta steps over a batch of levels: ``(meta_params, metrics [num_steps])`` (jittable)."""
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
            raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
        state, metrics = jax.lax.scan(lambda s, _: self.step(s), self.init(key, meta_params, level_params),
                                      None, length=num_steps)
        return state.meta_params, metrics


def make_meta_gradient_step(
    agent_config: A.AgentConfig,
    env: Any,
    rule: LPGRule,
    inner_updates: int = 5,
    meta_optimizer: Any = None,
    regularisers: tuple[float, float, float, float] = DEFAULT_REGULARISERS,
    agent_lifetime: int = 250,
    level_sampler: Any = None,
    lifetime_min: int | None = None,
    stagger: bool = False,
    teacher: Any = None,
) -> MetaGradient:
    """The meta-gradient learner; ``.step`` is one meta step, ``.run`` runs N (see :class:`MetaGradient`)."""
    return MetaGradient(agent_config, env, rule, inner_updates, meta_optimizer, tuple(regularisers), agent_lifetime,
                        level_sampler, lifetime_min, stagger, teacher)


def run_meta_gradient(key: jax.Array, agent_config: A.AgentConfig, env: Any, rule: LPGRule, meta_params: Any,
                      level_params: Any, num_steps: int, **options: Any) -> tuple[Any, dict]:
    """Jitted ``make_meta_gradient_step(...).run``: ``(meta_params, metrics)`` after ``num_steps`` meta steps."""
    learner = make_meta_gradient_step(agent_config, env, rule, **options)
    return jax.jit(learner.run, static_argnames=("num_steps",))(key, meta_params, level_params, num_steps=num_steps)
