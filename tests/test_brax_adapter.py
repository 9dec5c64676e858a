"""Brax adapter (brax is a default dependency: nothing here skips): registration, task spaces, per-task physics,
reset to the current task."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.brax_adapter import BRAX_NAMES, BraxParams, velocity_reward
from envs.wrappers import TaskResetWrapper


def test_all_brax_envs_registered_with_task_spaces():
    for name in BRAX_NAMES:
        env, params = envs.make(name)
        space = env.task_space
        assert {"mass_scale", "friction_scale"} <= set(space.names)
        assert bool(space.contains(params)), name
        tasks = space.sample_batch(jax.random.key(0), 8)
        assert bool(jnp.all(jax.vmap(space.contains)(tasks))), name
        assert env.action_space(params).shape == (env.num_actions,)
    _, params = envs.make("brax-halfcheetah", goal="velocity", target_velocity=2.0)
    assert float(params.target_velocity) == 2.0
    with pytest.raises(ValueError, match="goal"):
        envs.make("brax-ant", goal="spin")


def test_reacher_targets_lie_in_the_disc():
    env, _ = envs.make("brax-reacher")
    targets = np.asarray(env.task_space.sample_batch(jax.random.key(1), 2000).target)
    radius = np.linalg.norm(targets, axis=1)
    assert radius.max() <= 0.2 + 1e-6
    # uniform over the disc: half the mass inside radius 0.2/sqrt(2)
    assert abs(np.mean(radius < 0.2 / math.sqrt(2)) - 0.5) < 0.05


def test_velocity_reward_by_goal():
    v = jnp.array([2.0, 1.0])
    p = BraxParams(direction=-1.0, target_velocity=1.5)
    assert float(velocity_reward(v, p, "halfcheetah", "direction")) == -2.0  # HalfCheetah-Dir backwards
    assert float(velocity_reward(v, p, "halfcheetah", "velocity")) == pytest.approx(-0.5)
    ant = BraxParams(direction=math.pi / 2, target_velocity=0.0)
    assert float(velocity_reward(v, ant, "ant", "direction")) == pytest.approx(1.0, abs=1e-6)  # along +y
    assert float(velocity_reward(v, ant, "ant", "velocity")) == pytest.approx(-1.0, abs=1e-6)


def test_system_scales_mass_and_friction():
    env, params = envs.make("brax-hopper")
    base = env.system(params)
    heavy = env.system(params.replace(mass_scale=2.0, friction_scale=0.5))
    np.testing.assert_allclose(heavy.link.inertia.mass, 2 * base.link.inertia.mass, rtol=1e-6)
    np.testing.assert_allclose(heavy.link.inertia.i, 2 * base.link.inertia.i, rtol=1e-6)
    np.testing.assert_allclose(heavy.geom_friction, 0.5 * base.geom_friction, rtol=1e-6)


def test_reacher_resets_to_the_current_task_and_physics_vary():
    """One compile: 3 envs, episodes of 2 steps, a new task offered at the episode end."""
    env, params = envs.make("brax-reacher", max_steps_in_episode=2)
    wrapped = TaskResetWrapper(env)
    t1, t2, t3 = jnp.array([0.1, 0.05]), jnp.array([-0.12, 0.0]), jnp.array([0.0, -0.15])
    first = envs.stack_tasks([params.replace(target=t1), params.replace(target=t1, mass_scale=2.0), params.replace(target=t2)])
    second = envs.stack_tasks([params.replace(target=t3)] * 3)
    action = jnp.array([0.8, -0.6])

    def run(key, first, second):
        obs, state = wrapped.reset(key, first)

        def body(state, k):
            obs, state, reward, term, trunc, info = wrapped.step(k, state, action, second)
            return state, (obs, reward, trunc)

        return obs, jax.lax.scan(body, state, jax.random.split(key, 3))[1]

    keys = jnp.stack([jax.random.key_data(jax.random.key(7))] * 3)  # same key: only the task differs
    run_batch = jax.jit(jax.vmap(lambda k, a, b: run(jax.random.wrap_key_data(k), a, b)))
    obs0, (obs, reward, trunc) = run_batch(keys, first, second)
    assert obs0.shape == (3, 11) and bool(jnp.all(jnp.isfinite(obs))) and bool(jnp.all(jnp.isfinite(reward)))
    # obs[4:6] is the target: the task's own at reset, the next task's after the auto-reset at t=1
    np.testing.assert_allclose(obs0[:, 4:6], np.stack([t1, t1, t2]), atol=1e-6)
    assert trunc[:, 1].all() and not trunc[:, 0].any()
    np.testing.assert_allclose(obs[:, 1, 4:6], np.stack([t3] * 3), atol=1e-6)
    # same key and action, twice the mass: a different arm motion (obs[6:8] is the tip velocity)
    assert not np.allclose(obs[0, 0, 6:8], obs[1, 0, 6:8], atol=1e-4)
    # reward = -|tip - target| - |a|^2, and the distance term is read from the obs
    np.testing.assert_allclose(
        reward[:, 0], -np.linalg.norm(obs[:, 0, -3:], axis=-1) - float(jnp.sum(action**2)), rtol=1e-5
    )
    again = run_batch(keys, first, second)
    np.testing.assert_array_equal(np.asarray(again[1][0]), np.asarray(obs))
