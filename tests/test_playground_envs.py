"""MuJoCo Playground's DM Control Suite tasks: registered from the installed package, physics per task, the
default task equal to Playground's own env (the shipped configs: tests/test_train_cli.py; quiet loading, in one
process with Brax: tests/test_brax_envs.py)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.brax_adapter import PHYSICS
from envs.playground_adapter import DM_CONTROL_TASKS


def test_every_dm_control_suite_task_of_the_installed_playground_is_registered():
    from mujoco_playground import registry

    assert sorted(DM_CONTROL_TASKS) == sorted(registry.dm_control_suite.ALL_ENVS)
    assert {f"dmc-{t}" for t in DM_CONTROL_TASKS} <= set(envs.registered())


def test_the_task_scales_the_mjx_model():
    env, params = envs.make("dmc-CartpoleBalance")
    assert {name for name, _, _ in PHYSICS} == set(env.task_space.names)
    base = env.model(params)
    task = env.model(params.replace(mass_scale=2.0, friction_scale=0.5, gravity_scale=1.5, actuator_scale=0.5))
    np.testing.assert_allclose(task.body_mass, 2 * base.body_mass, rtol=1e-6)
    np.testing.assert_allclose(task.body_inertia, 2 * base.body_inertia, rtol=1e-6)
    np.testing.assert_allclose(task.geom_friction, 0.5 * base.geom_friction, rtol=1e-6)
    np.testing.assert_allclose(task.opt.gravity, [0.0, 0.0, -1.5 * 9.81], rtol=1e-6)
    np.testing.assert_allclose(task.actuator_gear, 0.5 * base.actuator_gear, rtol=1e-6)
    with pytest.raises(ValueError, match="mass_scale=3.0 is outside"):
        envs.make("dmc-CartpoleBalance", mass_scale=3.0)


def test_tasks_in_one_vmapped_program_have_their_own_physics_and_the_default_task_is_playgrounds():
    """Full thrust for 20 steps with actuator strength 0.5, 1 and 1.5 (same key): the cart goes further the
    stronger its motor; the default task's rewards equal Playground's own env stepped directly."""
    env, params = envs.make("dmc-CartpoleBalance")
    tasks = envs.stack_tasks([params.replace(actuator_scale=s) for s in (0.5, 1.0, 1.5)])
    action = jnp.ones(1)

    def episode(task):
        _, state = env.reset_env(jax.random.key(0), task)

        def body(state, _):
            obs, state, reward, terminated, _ = env.step_env(jax.random.key(1), state, action, task)
            return state, (obs, reward, terminated)

        return jax.lax.scan(body, state, None, length=20)[1]

    def playground_episode():
        def body(state, _):
            state = env._env.step(state, action)
            return state, state.reward

        return jax.lax.scan(body, env._env.reset(jax.random.key(0)), None, length=20)[1]

    obs, reward, terminated = jax.jit(jax.vmap(episode))(tasks)
    cart = np.asarray(obs[:, -1, 0])  # CartpoleBalance's observation starts with the cart's position
    assert 0 < cart[0] < cart[1] < cart[2], cart
    assert not np.asarray(terminated).any()
    np.testing.assert_allclose(np.asarray(reward[1]), np.asarray(jax.jit(playground_episode)()), rtol=1e-5)
