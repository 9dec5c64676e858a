"""Naive, forward-backward and RISC agents on a reset-free env, one jitted program per evaluation period.

One goal-conditioned agent (DQN on gridworlds, :mod:`metarl.reset_free.agents`;
SAC on manipulation tasks, :mod:`metarl.reset_free.sac_agent`)
acts in both directions — the goal is part of the observation: forward phases
pursue a goal from the task's goal distribution, backward phases the state of
the last intervention. Per environment step:

1. act epsilon-greedily, step the :class:`envs.reset_free.ResetFree` env (it
   resets only at interventions);
2. decide how the phase ends: success (terminal), the phase's time limit, an
   intervention, or — RISC only — a switch drawn from
   :func:`metarl.reset_free.switching.draw_switch` with the success critic's
   ``P_succ`` at the new state (the next step's pre-step state);
3. store the transition with the discount :func:`metarl.reset_free.targets.discount`
   gives for ``bootstrap`` (an intervention stores the pre-intervention state
   as ``next_obs``), then learn (the agent and, for RISC, the success critic);
4. a finished phase flips the direction (naive: draws a new forward goal); an
   intervention starts a forward phase.

Every ``eval_every`` steps the deployed policy runs ``eval_episodes`` episodes
of ``H_E`` steps from the initial-state distribution with a forward goal, in a
separate episodic copy of the env (EARL's deployed evaluation). The period is
one ``lax.scan`` plus the evaluation, vmapped over seeds and compiled once; the
host loop only walks periods (progress bar, checkpoints).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

import envs
from envs.reset_free import ResetFree
from metarl.agents import replay
from metarl.reset_free.agents import DQNAgent
from metarl.reset_free.benchmarks import EARLTask
from metarl.reset_free.config import ResetFreeConfig
from metarl.reset_free.sac_agent import SACAgent
from metarl.reset_free.switching import draw_switch
from metarl.reset_free.targets import discount

DEMO_NOISE = 0.1  # std of the Gaussian noise on the scripted demonstrator's actions (varied demonstrations)


@struct.dataclass
class Carry:
    env: Any  # ResetFreeState
    obs: jax.Array
    forward: jax.Array  # bool: the phase pursues the task goal
    phase_steps: jax.Array  # int32
    agent: Any  # the agent's state (learner and success critic, metarl.reset_free.agents)
    buffer: replay.ReplayBuffer
    key: jax.Array
    steps: jax.Array  # int32, environment steps so far


def _select(flag: jax.Array, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(flag, x, y), a, b)


class ResetFreeRunner:
    """Build once per (task, resolved config, agent); ``period`` advances every seed by ``eval_every`` steps."""

    def __init__(self, task: EARLTask, cfg: ResetFreeConfig, agent: Any, env: Any = None, params: Any = None):
        """``agent``: a :mod:`metarl.reset_free.agents` agent; ``env``/``params`` default to the task's env."""
        self.task, self.cfg, self.agent = task, cfg, agent
        self.env, self.params = (env, params) if env is not None else envs.make(task.env)
        self.wrapped = ResetFree(self.env, cfg.steps_per_intervention)
        self.uses_critic = cfg.algorithm == "risc"
        self.hidden_goal = 0 if cfg.goal_conditioned else self._goal_obs_size()
        self.demo_steps = int(getattr(self.env, "demo_steps", 0))
        if cfg.demos and not (self.demo_steps and callable(getattr(self.env, "scripted_action", None))):
            raise ValueError(f"demos={cfg.demos}: {self.env.name} has no scripted demonstrator (scripted_action, "
                             "demo_steps); use demos=0")
        self._period = jax.jit(jax.vmap(self._period_fn))

    def _goal_obs_size(self) -> int:
        size = getattr(self.env, "goal_obs_size", None)
        if not size:
            raise ValueError(f"goal_conditioned=false: {self.env.name} does not say which observation entries are "
                             "its goal (goal_obs_size)")
        return int(size)

    def _view(self, obs: jax.Array) -> jax.Array:
        """What the agent sees: the observation, its goal entries zeroed for an agent that is not goal-conditioned."""
        if not self.hidden_goal:
            return obs
        return obs.at[..., -self.hidden_goal:].set(0.0)

    # --- state ------------------------------------------------------------------------------------------
    def init(self, key: jax.Array) -> Carry:
        k_env, k_agent, key = jax.random.split(key, 3)
        obs, env_state = self.wrapped.reset(k_env, self.params)
        example = {"obs": obs, "action": self.agent.example_action, "reward": jnp.float32(0),
                   "discount": jnp.float32(0), "next_obs": obs, "success": jnp.float32(0)}
        demos = self.cfg.demos * 2 * self.demo_steps
        buffer = replay.init(example, min(self.agent.buffer_size, self.cfg.total_steps + demos))
        if demos:
            key, k_demo = jax.random.split(key)
            buffer = replay.add(buffer, self._demonstrations(k_demo))
        return Carry(env_state, obs, jnp.bool_(True), jnp.int32(0), self.agent.init(k_agent), buffer, key,
                     jnp.int32(0))

    def _demonstrations(self, key: jax.Array) -> dict:
        """RISC's ``use_demo``: ``demos`` scripted episodes towards a forward goal from rho_0, each followed by one
        back to its start, as transitions (the env's ``scripted_action`` with Gaussian noise on the action).

        Each direction lasts ``demo_steps`` steps; reaching the goal is terminal, the last step a truncation."""
        env, params, steps = self.env, self.params, self.demo_steps

        def direction(state: Any, key: jax.Array) -> tuple[Any, dict]:
            def body(state: Any, xs: tuple) -> tuple[Any, dict]:
                k, last = xs
                k_noise, k_env = jax.random.split(k)
                obs = env.get_obs(state, params)
                action = env.scripted_action(obs)
                action = jnp.clip(action + DEMO_NOISE * jax.random.normal(k_noise, action.shape), -1.0, 1.0)
                next_obs, state, reward, terminated, _ = env.step_env(k_env, state, action, params)
                transition = {"obs": self._view(obs), "action": action, "reward": reward.astype(jnp.float32),
                              "discount": discount(terminated, last, self.agent.gamma, self.cfg.bootstrap),
                              "next_obs": self._view(next_obs), "success": terminated.astype(jnp.float32)}
                return state, transition

            return jax.lax.scan(body, state, (jax.random.split(key, steps), jnp.arange(steps) == steps - 1))

        def episode(key: jax.Array) -> dict:
            k_reset, k_forward, k_backward = jax.random.split(key, 3)
            _, state = env.reset_env(k_reset, params)
            start = env.start_goal(state, params)
            state, forward = direction(state, k_forward)
            _, backward = direction(env.with_goal(state, start, params), k_backward)
            return jax.tree.map(lambda f, b: jnp.concatenate([f, b]), forward, backward)

        episodes = jax.vmap(episode)(jax.random.split(key, self.cfg.demos))
        return jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), episodes)

    def init_seeds(self) -> Carry:
        keys = jax.random.split(jax.random.PRNGKey(self.cfg.seed), self.cfg.seeds)
        return jax.jit(jax.vmap(self.init))(keys)

    # --- one environment step ---------------------------------------------------------------------------
    def _learn(self, carry: Carry, key: jax.Array) -> tuple[Any, jax.Array]:
        k_sample, k_learn = jax.random.split(key)
        batch = replay.sample(carry.buffer, k_sample, self.agent.batch_size)
        return self.agent.learn(carry.agent, batch, k_learn, self.uses_critic)

    def _step(self, carry: Carry, _: Any) -> tuple[Carry, dict]:
        cfg, agent = self.cfg, self.agent
        key, k_act, k_env, k_goal, k_switch, k_learn, k_p = jax.random.split(carry.key, 7)
        action = agent.act(carry.agent, self._view(carry.obs), k_act, carry.steps)
        obs, env_state, reward, terminated, intervened, info = self.wrapped.step(k_env, carry.env, action, self.params)
        next_obs = jnp.where(intervened, info["final_obs"], obs)  # bootstrap from where the phase really was
        phase_steps = carry.phase_steps + 1
        timeout = phase_steps >= cfg.phase_step_limit
        if self.uses_critic:
            p = agent.p_success(carry.agent, next_obs, k_p)
            switch = draw_switch(k_switch, p, phase_steps, cfg.conservative_factor, cfg.minimum_steps,
                                 cfg.trajectory_proportion)
            switch = switch & ~terminated & ~timeout & ~intervened
        else:
            switch = jnp.bool_(False)
        truncated = intervened | timeout | switch
        transition = {"obs": self._view(carry.obs), "action": action, "reward": reward.astype(jnp.float32),
                      "discount": discount(terminated, truncated, agent.gamma, cfg.bootstrap),
                      "next_obs": self._view(next_obs), "success": terminated.astype(jnp.float32)}
        buffer = replay.add(carry.buffer, jax.tree.map(lambda x: x[None], transition))
        carry = carry.replace(buffer=buffer, steps=carry.steps + 1)

        due = (carry.steps >= agent.learning_starts) & (carry.steps % agent.train_every == 0)
        agent_state, loss = jax.lax.cond(
            due, lambda c: self._learn(c, k_learn), lambda c: (c.agent, jnp.float32(0)), carry)

        # the next phase: a finished phase flips direction (naive keeps going forward with a fresh goal)
        ended = terminated | timeout | switch
        forward = carry.forward if cfg.algorithm == "naive" else jnp.where(ended, ~carry.forward, carry.forward)
        forward = jnp.where(intervened, True, forward)
        goal = jnp.where(forward, self.env.forward_goal(k_goal, self.params), env_state.start)
        new_obs, new_state = self.wrapped.set_goal(env_state, goal, self.params)
        change = ended & ~intervened  # an intervention already drew a forward goal
        obs, env_state = _select(change, (new_obs, new_state), (obs, env_state))
        stats = {
            "task_reward": jnp.where(carry.forward, reward, 0.0),
            "forward_success": carry.forward & terminated,
            "backward_success": ~carry.forward & terminated,
            "switch": switch,
            "timeout": timeout & ~terminated,
            "loss": loss,
            "learned": due,
        }
        carry = carry.replace(env=env_state, obs=obs, forward=forward,
                              phase_steps=jnp.where(ended | intervened, 0, phase_steps).astype(jnp.int32),
                              agent=agent_state, key=key)
        return carry, stats

    # --- deployed evaluation ----------------------------------------------------------------------------
    def _episode(self, agent_state: Any, key: jax.Array) -> dict:
        k_reset, key = jax.random.split(key)
        obs, state = self.env.reset_env(k_reset, self.params)

        def step(c: tuple, k: jax.Array) -> tuple[tuple, None]:
            obs, state, done, ret, success, length = c
            k_act, k_env = jax.random.split(k)
            action = self.agent.deploy(agent_state, self._view(obs), k_act)
            out = self.env.step_env(k_env, state, action, self.params)
            obs2, state2, reward, info = out[0], out[1], out[2], out[-1]
            live = ~done
            reached = live & info["success"]
            return (obs2, state2, done | reached, ret + jnp.where(live, reward, 0.0), success | reached,
                    length + live.astype(jnp.int32)), None

        init = (obs, state, jnp.bool_(False), jnp.float32(0), jnp.bool_(False), jnp.int32(0))
        (_, _, _, ret, success, length), _ = jax.lax.scan(step, init, jax.random.split(key, self.task.eval_horizon))
        return {"return": ret, "success": success.astype(jnp.float32), "length": length}

    def evaluate(self, agent_state: Any, key: jax.Array) -> dict:
        episodes = jax.vmap(lambda k: self._episode(agent_state, k))(jax.random.split(key, self.cfg.eval_episodes))
        return {f"deployed_{k}": jnp.mean(v.astype(jnp.float32)) for k, v in episodes.items()}

    # --- one evaluation period --------------------------------------------------------------------------
    def _period_fn(self, carry: Carry) -> tuple[Carry, dict]:
        carry, stats = jax.lax.scan(self._step, carry, None, length=self.cfg.eval_every)
        key, k_eval = jax.random.split(carry.key)
        carry = carry.replace(key=key)
        learned = jnp.maximum(jnp.sum(stats["learned"]), 1)
        metrics = {
            **self.evaluate(carry.agent, k_eval),
            "steps": carry.steps,
            "interventions": carry.env.interventions,
            "task_reward": jnp.sum(stats["task_reward"]),
            "forward_successes": jnp.sum(stats["forward_success"]),
            "backward_successes": jnp.sum(stats["backward_success"]),
            "switches": jnp.sum(stats["switch"]),
            "timeouts": jnp.sum(stats["timeout"]),
            "td_loss": jnp.sum(stats["loss"]) / learned,
        }
        return carry, metrics

    def period(self, carry: Carry) -> tuple[Carry, dict]:
        """Every seed advanced by ``eval_every`` steps, then its deployed evaluation (one compiled call)."""
        return self._period(carry)

    @property
    def periods(self) -> int:
        return self.cfg.total_steps // self.cfg.eval_every


def build_runner(task: EARLTask, cfg: ResetFreeConfig, agent_cfg: Any) -> ResetFreeRunner:
    """The task's env, the agent its ``task.agent`` names, and the runner around them."""
    env, params = envs.make(task.env)
    if task.agent == "sac":  # the deployed policy is tanh(mean) unless eval_epsilon > 0 asks for exploration
        agent = SACAgent(agent_cfg, env, params, cfg.eval_epsilon == 0, cfg.critic_lr, cfg.critic_tau)
    elif task.agent == "dqn":
        agent = DQNAgent(agent_cfg, int(env.observation_space(params).shape[0]), int(env.action_space(params).n),
                         cfg.eval_epsilon, cfg.critic_lr, cfg.critic_tau)
    else:
        raise ValueError(f"task {task.id} needs the {task.agent} agent; the reset-free runner drives dqn and sac")
    return ResetFreeRunner(task, cfg, agent, env, params)
