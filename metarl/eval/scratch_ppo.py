"""PPO trained from scratch on each held-out task with a trial's budget: the reference of an in-context curve.

RL² adapts inside one trial of ``k`` episodes of ``H`` steps. Its reference (issue 20) is an ordinary learner
given the same experience of the task: here PPO with one env on the
task, one update per episode (``num_steps = H``), ``k`` updates, so entry ``j`` of its curve is the return of
its ``j``-th episode, played by the policy after ``j - 1`` updates. Episodes of the benchmarks that use it
(Dark Room, ML1/ML10) never terminate, so each lasts exactly ``H`` steps and each update ends exactly one (an env
whose episodes can end early would report the mean of the episodes an update ends).

    curves = scratch_ppo(env, env_params, tasks, episodes=4, horizon=150, key=key)
    curves["episode_returns"]    # [tasks, k]
    curves["episode_success"]    # [tasks, k] (0 for envs without a success flag)
    curves["episode_lengths"]    # [tasks, k]: H each

Every task's run is one program: tasks are ``vmap``'d.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from metarl.agents.ppo import PPO, PPOConfig


def scratch_config(episodes: int, horizon: int, base: PPOConfig | None = None) -> PPOConfig:
    """``base`` (PPO's defaults) on one env, one update of one minibatch per episode, ``episodes`` updates."""
    base = PPOConfig() if base is None else base
    return dataclasses.replace(base, num_envs=1, num_steps=int(horizon), num_minibatches=1,
                               total_timesteps=int(episodes) * int(horizon))


def scratch_ppo(env: Any, env_params: Any, tasks: Any, episodes: int, horizon: int, key: jax.Array,
                config: PPOConfig | None = None) -> dict:
    """Per task of the batched ``tasks``: PPO's return and success of each of its ``episodes`` episodes."""
    cfg = scratch_config(episodes, horizon, config)
    agent = PPO(cfg, env, env_params)
    n = jax.tree.leaves(tasks)[0].shape[0]

    def one(task: Any, key: jax.Array) -> dict:
        k_init, k_reset = jax.random.split(key)
        state = agent.reset_envs(agent.init(k_init), k_reset, jax.tree.map(lambda x: x[None], task))
        _, metrics = agent.run(state, cfg.num_updates)
        return {"episode_returns": metrics["episode_return"], "episode_success": metrics["success"],
                "episode_lengths": metrics["episode_length"]}

    return jax.jit(jax.vmap(one))(tasks, jax.random.split(key, n))
