"""Brax as a first-class env family: shipped configs, task spaces over physics, the pendulum's dynamics by hand,
PPO learning on it, and quiet imports."""

import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hydra import compose, initialize_config_module

import envs
from envs.brax_adapter import BRAX_NAMES, PHYSICS, POLE_LIMIT
from metarl.agents.ppo import PPOConfig, make_train

CONFIGS = sorted(p.stem for p in (Path(__file__).parents[1] / "configs" / "env" / "brax").glob("*.yaml"))


def _train_config(name: str, *overrides: str):
    with initialize_config_module("configs", version_base=None):
        return compose("train", overrides=[f"env=brax/{name}", *overrides])


def test_a_config_for_every_brax_env_builds_its_env_task_space_and_agent():
    assert sorted(f"brax-{c}" for c in CONFIGS) == sorted(BRAX_NAMES)
    for name in CONFIGS:
        cfg = _train_config(name)
        env, params = envs.make(cfg.env.name, **cfg.env.overrides)
        assert envs.make(cfg.env.name, **cfg.env.overrides)[0] is env  # one env object per process: one compile
        space = env.task_space
        assert {field for field, _, _ in PHYSICS} <= set(space.names), name
        tasks = space.sample_batch(jax.random.key(0), 16)
        assert bool(jnp.all(jax.vmap(space.contains)(tasks))), name
        for field, low, high in PHYSICS:
            values = np.asarray(getattr(tasks, field))
            assert low <= values.min() < values.max() <= high, (name, field)
        agent = PPOConfig(**{k: cfg.agent[k] for k in ("lr", "num_envs", "num_steps", "total_timesteps")})
        assert agent.num_envs * agent.num_steps <= agent.total_timesteps


def test_gravity_and_actuator_scale_the_system():
    env, params = envs.make("brax-inverted_pendulum")
    base = env.system(params)
    task = env.system(params.replace(gravity_scale=0.5, actuator_scale=1.5))
    np.testing.assert_allclose(task.gravity, 0.5 * base.gravity, rtol=1e-6)
    np.testing.assert_allclose(task.actuator.gear, 1.5 * base.actuator.gear, rtol=1e-6)
    assert float(base.gravity[2]) == pytest.approx(-9.81)


def test_inverted_pendulum_pays_one_per_upright_step_ends_past_the_limit_and_stronger_motors_push_harder():
    """Full thrust for 10 steps, tasks with actuator strength 0.5, 1 and 1.5: the cart's speed is ordered by strength,
    every step pays 1, and an episode ends on the first step with the pole beyond 0.2 rad."""
    env, params = envs.make("brax-inverted_pendulum")
    tasks = envs.stack_tasks([params.replace(actuator_scale=s) for s in (0.5, 1.0, 1.5)])

    def episode(task):
        obs, state = env.reset_env(jax.random.key(0), task)

        def body(state, _):
            obs, state, reward, terminated, _ = env.step_env(jax.random.key(1), state, jnp.ones(1), task)
            return state, (obs, reward, terminated)

        return jax.lax.scan(body, state, None, length=10)[1]

    obs, reward, terminated = jax.jit(jax.vmap(episode))(tasks)
    cart_speed = np.asarray(obs[:, 0, 2])  # obs = (cart x, pole angle, cart velocity, pole angular velocity)
    assert 0 < cart_speed[0] < cart_speed[1] < cart_speed[2]
    np.testing.assert_array_equal(np.asarray(reward), 1.0)
    angle = np.abs(np.asarray(obs[..., 1]))
    np.testing.assert_array_equal(np.asarray(terminated), angle > POLE_LIMIT)
    assert np.asarray(terminated)[2].any()  # the strongest cart tips its pole within the 10 steps


def test_ppo_learns_to_balance_the_brax_pendulum():
    cfg = _train_config("inverted_pendulum")
    env, params = envs.make(cfg.env.name, **cfg.env.overrides)
    # 60 updates at a constant lr (the config's 2e5 steps anneal it): 7 of 8 seeds balance for the whole 1000-step
    # episode by then, the slowest reached 181 (measured on seeds split from key 0)
    agent = {**cfg.agent, "total_timesteps": 61_440, "anneal_lr": False, "hidden_sizes": tuple(cfg.agent.hidden_sizes)}
    _, metrics = jax.jit(jax.vmap(make_train(PPOConfig(**agent), env, params)))(jax.random.split(jax.random.key(0), 4))
    returns = np.asarray(metrics["episode_return"])
    first, final = np.nanmean(returns[:, :5], axis=1), np.nanmean(returns[:, -5:], axis=1)
    assert (first < 20).all(), first  # a random cart drops the pole within about 10 steps
    assert (final > 100).all() and final.mean() > 500, (first, final)


def test_building_brax_and_playground_envs_prints_nothing():
    """MJX prints a line per missing GPU backend on import, brax warns on every system it loads, MuJoCo's compiler
    (in C) on the half-cheetah's deprecated MJCF, and Warp (MuJoCo Playground's) prints a banner; users see none of it.
    Brax first, so its own imports are the ones that could print; one process for both families."""
    code = "import envs; envs.make('brax-halfcheetah'); envs.make('dmc-CheetahRun')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=os.environ | {"JAX_PLATFORMS": "cpu"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout == "" and out.stderr == "", (out.stdout, out.stderr)
