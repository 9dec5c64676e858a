"""gymnasium export: check_env on single envs, vector-env smoke test (shapes, autoreset, seeding, tasks)."""

import gymnax
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnax.environments import spaces as gx

import envs
from envs.gymnasium_export import to_gym_space, to_gymnasium, to_gymnasium_vector


def first_native() -> list[str]:
    native = [n for n in envs.registered() if n not in gymnax.registered_envs and not n.startswith("brax-")]
    return native[:1]


@pytest.mark.parametrize("name", ["CartPole-v1", "Pendulum-v1", "Catch-bsuite"] + first_native())
def test_check_env(name):
    env = to_gymnasium(name, seed=1)
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=5)
    assert obs in env.observation_space
    obs2, reward, term, trunc, info = env.step(env.action_space.sample())
    assert obs2 in env.observation_space and isinstance(reward, float) and isinstance(term, bool)


def test_space_conversion():
    assert to_gym_space(gx.Discrete(4)) == gymnasium.spaces.Discrete(4)
    box = to_gym_space(gx.Box(-1.0, jnp.array([1.0, 2.0]), (2,), jnp.float32))
    assert box.dtype == np.float32 and box.shape == (2,) and box.high.tolist() == [1.0, 2.0]
    assert box.low.tolist() == [-1.0, -1.0]
    nested = to_gym_space(gx.Dict({"a": gx.Discrete(2), "b": gx.Tuple([gx.Box(0, 1, (3,), jnp.int32)])}))
    assert isinstance(nested["b"], gymnasium.spaces.Tuple) and nested["b"][0].dtype == np.int32
    with pytest.raises(ValueError, match="cannot convert"):
        to_gym_space(object())


def test_single_env_returns_final_observation_and_needs_reset():
    base, params = envs.make("CartPole-v1", max_steps_in_episode=4)
    env = to_gymnasium(base, params=params)
    obs, _ = env.reset(seed=0)
    flags = []
    for _ in range(4):
        last = obs
        obs, reward, term, trunc, _ = env.step(0)
        flags.append(trunc)
    assert flags == [False, False, False, True]
    # the final obs continues the trajectory (cart moved further left), it is not a fresh reset
    assert obs[1] < last[1] < 0
    with pytest.raises(ValueError, match="render_mode"):
        to_gymnasium("CartPole-v1", render_mode="human")


def test_vector_env_shapes_autoreset_and_per_env_tasks():
    base, params = envs.make("CartPole-v1")
    n = 6
    tasks = base.task_space.sample_batch(jax.random.key(0), n)
    horizons = jnp.array([2, 3, 4, 2, 3, 4], jnp.int32)
    tasks = tasks.replace(max_steps_in_episode=horizons)
    venv = to_gymnasium_vector(base, n, tasks=tasks, seed=3)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert venv.observation_space.shape == (n, 4) and venv.action_space.shape == (n,)
    obs, info = venv.reset(seed=3)
    assert obs.shape == (n, 4) and obs.dtype == np.float32 and obs in venv.observation_space
    ends = []
    for t in range(4):
        actions = venv.action_space.sample()
        obs, reward, term, trunc, info = venv.step(actions)
        assert obs.shape == (n, 4) and reward.shape == (n,) and reward.dtype == np.float32
        assert term.dtype == np.bool_ and trunc.dtype == np.bool_
        assert obs in venv.observation_space
        done = term | trunc
        ends.append(done)
        if done.any():
            np.testing.assert_array_equal(info["_final_obs"], done)
            # SAME_STEP: the returned obs is already a fresh reset, final_obs the end of the episode
            assert not np.allclose(info["final_obs"][done], obs[done])
            np.testing.assert_array_equal(info["final_obs"][~done], obs[~done])
        else:
            assert "final_obs" not in info
    ends = np.array(ends)
    # every env truncates at its own horizon (random CartPole actions never fail within 4 steps)
    np.testing.assert_array_equal(ends[:, 0], [False, True, False, True])
    np.testing.assert_array_equal(ends[:, 1], [False, False, True, False])
    np.testing.assert_array_equal(ends[:, 2], [False, False, False, True])
    venv.close()


def rollout(venv, seed, steps=5):
    obs, _ = venv.reset(seed=seed)
    out = [obs]
    for t in range(steps):
        obs, reward, *_ = venv.step(np.array([t % 2] * venv.num_envs))
        out += [obs, reward]
    return out


def test_vector_env_seeding_is_deterministic():
    a = to_gymnasium_vector("Acrobot-v1", 3)
    b = to_gymnasium_vector("Acrobot-v1", 3)
    ra, rb, rc = rollout(a, 7), rollout(b, 7), rollout(b, 8)
    for x, y in zip(ra, rb):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(ra[0], rc[0])
    assert not np.array_equal(ra[0][0], ra[0][1])  # each copy has its own key
    # reset() without a seed continues the seeded stream, so it is reproducible as well
    a.reset(seed=11)
    b.reset(seed=11)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])


def test_vector_env_task_switch_and_validation():
    base, params = envs.make("Pendulum-v1")
    venv = to_gymnasium_vector(base, 2)
    assert np.asarray(venv.tasks.g).tolist() == [10.0, 10.0]
    new = base.task_space.sample_batch(jax.random.key(1), 2)
    venv.reset(seed=0, options={"tasks": new})
    np.testing.assert_array_equal(np.asarray(venv.tasks.g), np.asarray(new.g))
    obs, reward, term, trunc, _ = venv.step(np.zeros((2, 1), np.float32))
    assert obs.shape == (2, 3) and reward.shape == (2,)
    with pytest.raises(ValueError, match="leading axis"):
        to_gymnasium_vector(base, 3, tasks=new)
    with pytest.raises(ValueError, match="num_envs"):
        to_gymnasium_vector(base, 0)
    with pytest.raises(ValueError, match="reset"):
        to_gymnasium_vector(base, 2).step(np.zeros((2, 1), np.float32))
