"""PPO as an LPG evaluation baseline: same level, same environment steps, same evaluation.

An LPG lifetime of ``N`` updates sees ``num_envs x num_steps x N`` environment
steps; :func:`ppo_config_for` gives the project's PPO (:mod:`metarl.agents.ppo`)
exactly that budget (same ``num_envs`` and ``num_steps``, ``N`` updates).
:func:`make_ppo_runner` trains one PPO agent per (key, level) with
``PPO(config, env, level).init(key)`` + ``run`` (the program ``make_train``
builds, but with the level as an argument so seeds can have different levels)
and scores the trained stochastic policy (``PPO.policy()``) with
:func:`metarl.agents.policy.evaluate_policy`, the episode loop LPG and A2C
lifetimes are scored by, on the evaluation key an LPG lifetime with the same
key uses: with the same key every method meets the same start states.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from metarl.agents.policy import evaluate_policy
from metarl.agents.ppo import PPO, PPOConfig
from metarl.config import close_matches
from metarl.lpg.agents import AgentConfig

# PPOConfig fields that the evaluation sets from the LPG agent config and lifetime
_BUDGET_FIELDS = ("num_envs", "num_steps", "total_timesteps")


def ppo_config_for(agent_config: AgentConfig, num_updates: int, overrides: dict | None = None) -> PPOConfig:
    """PPO with the LPG agent's rollout shape and ``num_updates`` updates; ``overrides`` are other PPOConfig fields."""
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(PPOConfig)}
    for name in overrides:
        if name in _BUDGET_FIELDS:
            raise ValueError(f"ppo.{name} is fixed by the LPG agent config and lifetime; set it there instead")
        if name not in known:
            hint = close_matches(name, known - set(_BUDGET_FIELDS), or_list=True)
            raise ValueError(f"unknown PPO option ppo.{name}{hint}")
    if isinstance(num_updates, bool) or not isinstance(num_updates, int) or num_updates < 1:
        raise ValueError(f"num_updates must be a positive int, got {num_updates!r}")
    n, t = agent_config.num_envs, agent_config.num_steps
    try:
        config = PPOConfig(**{"gamma": agent_config.gamma, "gae_lambda": agent_config.gae_lambda, **overrides,
                              "num_envs": n, "num_steps": t, "total_timesteps": n * t * num_updates})
    except ValueError as error:  # the user wrote these as ppo.<field>
        raise ValueError(str(error).replace("PPOConfig.", "ppo.")) from None
    config.validate(prefix="ppo")
    return config


def evaluation_key(key: jax.Array) -> jax.Array:
    """The key :meth:`Lifetime.run` evaluates with for a lifetime started from ``key``."""
    return jax.random.split(key, 3)[2]


def make_ppo_runner(config: PPOConfig, env: Any, eval_episodes: int) -> Callable:
    """Jitted ``run(keys [S], levels [S, ...]) -> (final_return [S], returns [S, updates])``.

    Seed ``i`` trains PPO on ``levels[i]`` from ``keys[i]`` and is evaluated
    with :func:`evaluation_key` ``(keys[i])`` over ``eval_episodes`` episodes.
    """
    if isinstance(eval_episodes, bool) or not isinstance(eval_episodes, int) or eval_episodes < 1:
        raise ValueError(f"eval_episodes must be a positive int, got {eval_episodes!r}")
    agent = PPO(config, env, env.default_params)  # validates config against the env once, on the host
    if agent.continuous:
        raise ValueError(f"the LPG evaluation compares discrete-action agents; {getattr(env, 'name', env)} is continuous")

    def one_seed(key: jax.Array, level: Any) -> tuple[jax.Array, jax.Array]:
        trainer = PPO(config, env, level)
        state, metrics = trainer.run(trainer.init(key), config.num_updates)
        episodes = evaluate_policy(trainer.policy(), trainer.policy_params(state), env, level, evaluation_key(key),
                                   eval_episodes)
        return jnp.mean(episodes["return"]), metrics["episode_return"]

    return jax.jit(jax.vmap(one_seed))


def env_steps(agent_config: AgentConfig, num_updates: int) -> int:
    """Environment steps one agent takes in ``num_updates`` updates."""
    return int(math.prod((agent_config.num_envs, agent_config.num_steps, num_updates)))
