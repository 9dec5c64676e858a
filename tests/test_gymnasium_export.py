"""gymnasium export: spaces over the task space, both autoreset modes, seeding, action validation,
writable arrays, the SB3 adapter. Every native env's checks: test_gymnasium_export_envs.py."""

import importlib.util

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from gymnax.environments import spaces as gx

import envs
from envs.gymnasium_export import InvalidActionError, task_observation_space, to_gym_space, to_gymnasium
from envs.gymnasium_vector import check_vector_env, to_gymnasium_vector
from envs.packing import Packer


def test_observation_space_holds_for_every_task():
    """A gridworld's time feature scales with the task's horizon: the space built from the default
    task alone is too small for sampled tasks, the export's space (union over the task space) holds."""
    base, params = envs.make("gridworld-all")
    narrow = to_gym_space(base.observation_space(params))
    wide = task_observation_space(base, params)
    tasks = base.task_space.sample_batch(jax.random.key(0), 16)
    venv = to_gymnasium_vector(base, 16, params=params, tasks=tasks, autoreset_mode="same_step")
    venv.reset(seed=0)
    seen = []
    for _ in range(200):
        obs, *_ = venv.step(venv.action_space.sample())
        seen.append(obs)
    seen = np.concatenate(seen)
    assert all(o in wide for o in seen)
    assert not all(o in narrow for o in seen)  # the default task's space is wrong for these tasks


def test_space_conversion():
    assert to_gym_space(gx.Discrete(4)) == gymnasium.spaces.Discrete(4)
    box = to_gym_space(gx.Box(-1.0, jnp.array([1.0, 2.0]), (2,), jnp.float32))
    assert box.dtype == np.float32 and box.shape == (2,) and box.high.tolist() == [1.0, 2.0]
    assert box.low.tolist() == [-1.0, -1.0]
    nested = to_gym_space(gx.Dict({"a": gx.Discrete(2), "b": gx.Tuple([gx.Box(0, 1, (3,), jnp.int32)])}))
    assert isinstance(nested["b"], gymnasium.spaces.Tuple) and nested["b"][0].dtype == np.int32
    with pytest.raises(ValueError, match="cannot convert"):
        to_gym_space(object())


def test_packer_round_trip_is_exact():
    tree = {
        "f": jnp.array([1.5, -0.0, jnp.inf], jnp.float32),
        "i": jnp.array([[2**30 + 1, -7]], jnp.int32),
        "b": jnp.array([True, False]),
        "small": jnp.array([-3, 100], jnp.int8),
        "key": jax.random.split(jax.random.key(3), 2),
    }
    packer = Packer(tree)
    words = jax.jit(packer.pack)(tree)
    assert words.dtype == jnp.uint32 and words.shape == (packer.size,)
    back = jax.jit(packer.unpack)(words)
    for k in ("f", "i", "b", "small"):
        np.testing.assert_array_equal(np.asarray(back[k]), np.asarray(tree[k]))
        assert back[k].dtype == tree[k].dtype
    np.testing.assert_array_equal(jax.random.key_data(back["key"]), jax.random.key_data(tree["key"]))
    plain = {k: tree[k] for k in ("f", "i", "b", "small")}
    host = Packer(plain).unpack_host(np.array(Packer(plain).pack(plain)))
    for k in plain:
        np.testing.assert_array_equal(host[k], np.asarray(plain[k]))
        assert host[k].dtype == plain[k].dtype
    assert Packer(tree) == packer and hash(Packer(tree)) == hash(packer)


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
    assert obs.flags.writeable
    obs[0] = 123.0  # a writable copy: the env's state is not affected
    assert env.reset(seed=0)[0][0] != 123.0
    with pytest.raises(ValueError, match="render_mode"):
        to_gymnasium("CartPole-v1", render_mode="human")
    with pytest.raises(gymnasium.error.ResetNeeded):
        to_gymnasium("CartPole-v1").step(0)


def test_invalid_actions_raise_gymnasiums_error():
    env = to_gymnasium("CartPole-v1")
    env.reset(seed=0)
    for bad in (2, -1, 0.5, np.array([0, 1]), "left", None):
        with pytest.raises(InvalidActionError):
            env.step(bad)
    with pytest.raises(AssertionError):  # as gymnasium's classic-control envs assert it
        env.step(7)
    env.step(np.int64(1))
    env.step(np.array(0))
    pend = to_gymnasium("Pendulum-v1")
    pend.reset(seed=0)
    with pytest.raises(gymnasium.error.InvalidAction, match="NaN"):
        pend.step(np.array([np.nan], np.float32))
    with pytest.raises(InvalidActionError, match="shape"):
        pend.step(np.zeros(2, np.float32))
    pend.step(np.array([100.0]))  # outside the bounds: clipped, as gymnasium's continuous envs do
    venv = to_gymnasium_vector("CartPole-v1", 3)
    venv.reset(seed=0)
    with pytest.raises(InvalidActionError):
        venv.step(np.array([0, 1, 2]))
    with pytest.raises(InvalidActionError):
        venv.step(np.array([0, 1]))


@pytest.mark.parametrize("mode", ["next_step", "same_step"])
def test_vector_env_autoreset_modes_and_per_env_tasks(mode):
    base, params = envs.make("CartPole-v1")
    n = 6
    tasks = base.task_space.sample_batch(jax.random.key(0), n)
    tasks = tasks.replace(max_steps_in_episode=jnp.array([2, 3, 4, 2, 3, 4], jnp.int32))
    venv = to_gymnasium_vector(base, n, tasks=tasks, seed=3, autoreset_mode=mode)
    assert venv.metadata["autoreset_mode"] == {"next_step": AutoresetMode.NEXT_STEP,
                                               "same_step": AutoresetMode.SAME_STEP}[mode]
    obs, _ = venv.reset(seed=3)
    assert obs.shape == (n, 4) and obs.dtype == np.float32 and obs in venv.observation_space
    ends, rewards = [], []
    for _ in range(6):
        prev = obs
        obs, reward, term, trunc, info = venv.step(np.zeros(n, np.int64))
        assert reward.shape == (n,) and reward.dtype == np.float32 and obs.flags.writeable
        done = term | trunc
        ends.append(done)
        rewards.append(reward)
        if mode == "same_step" and done.any():
            np.testing.assert_array_equal(info["_final_obs"], done)
            # the returned obs is already a fresh reset, final_obs the end of the episode
            assert not np.allclose(info["final_obs"][done], obs[done])
            np.testing.assert_array_equal(info["final_obs"][~done], obs[~done])
        if mode == "next_step" and len(ends) > 1 and ends[-2].any():
            # the copies that ended last step come back reset (cart near the centre again)
            assert np.all(np.abs(obs[ends[-2], 1]) < np.abs(prev[ends[-2], 1]) + 1e-6)
            assert not info["_discount"][ends[-2]].any()
        assert "final_obs" not in info or mode == "same_step"
    ends, rewards = np.array(ends), np.array(rewards)
    if mode == "same_step":  # every copy truncates at its own horizon, and immediately continues
        np.testing.assert_array_equal(ends[:, 0], [False, True, False, True, False, True])
        np.testing.assert_array_equal(ends[:, 2], [False, False, False, True, False, False])
    else:  # one extra step per episode: the reset step (reward 0) that follows each end
        np.testing.assert_array_equal(ends[:, 0], [False, True, False, False, True, False])
        np.testing.assert_array_equal(rewards[:, 0], [1, 1, 0, 1, 1, 0])
        np.testing.assert_array_equal(ends[:, 2], [False, False, False, True, False, False])
    venv.close()


@pytest.mark.parametrize("mode,claimed", [("next_step", "SAME_STEP"), ("same_step", "NEXT_STEP")])
def test_vector_checker_catches_a_wrong_autoreset_claim(mode, claimed):
    base, params = envs.make("CartPole-v1", max_steps_in_episode=3)
    venv = to_gymnasium_vector(base, 2, params=params, autoreset_mode=mode)
    assert check_vector_env(venv, steps=8)["episode_ends"] > 0  # the honest claim passes
    venv.metadata = {**venv.metadata, "autoreset_mode": getattr(AutoresetMode, claimed)}
    with pytest.raises(AssertionError, match=claimed):
        check_vector_env(venv, steps=8)


def test_gymnasium_vector_wrappers_work_on_next_step():
    from gymnasium.wrappers.vector import NormalizeObservation, RecordEpisodeStatistics

    base, params = envs.make("CartPole-v1", max_steps_in_episode=5)
    venv = RecordEpisodeStatistics(NormalizeObservation(to_gymnasium_vector(base, 4, params=params)))
    venv.reset(seed=0)
    episodes = []
    for _ in range(12):
        _, _, term, trunc, info = venv.step(np.ones(4, np.int64))
        if "episode" in info:
            episodes += info["episode"]["l"][info["_episode"]].tolist()
    assert episodes and all(length == 5 for length in episodes)  # no off-by-one from the reset step


def rollout(venv, seed, steps=5):
    obs, _ = venv.reset(seed=seed)
    out = [obs]
    for t in range(steps):
        obs, reward, *_ = venv.step(np.array([t % 2] * venv.num_envs))
        out += [obs, reward]
    return out


def test_vector_env_seeding_int_and_list():
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
    # a list seeds each copy on its own: copy 0's trajectory depends on its seed alone
    x, y = rollout(a, [5, 6, 7]), rollout(b, [5, 9, None])
    for u, v in zip([o for o in x if o.ndim == 2], [o for o in y if o.ndim == 2]):  # the observations
        np.testing.assert_array_equal(u[0], v[0])
        assert not np.array_equal(u[1], v[1])
    with pytest.raises(ValueError, match="seeds"):
        a.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        a.reset(seed=[1, -2, 3])


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
    with pytest.raises(ValueError, match="autoreset_mode"):
        to_gymnasium_vector(base, 2, autoreset_mode="later")
    with pytest.raises(gymnasium.error.ResetNeeded):
        to_gymnasium_vector(base, 2).step(np.zeros((2, 1), np.float32))


@pytest.mark.skipif(importlib.util.find_spec("stable_baselines3") is None, reason="needs the [sb3] extra")
def test_sb3_ppo_learns_through_the_vecenv_adapter():
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_checker import check_env as sb3_check_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecMonitor

    from envs.sb3_export import to_sb3

    torch.set_num_threads(1)
    sb3_check_env(to_gymnasium("CartPole-v1"))
    venv = VecMonitor(to_sb3("CartPole-v1", 8, seed=0))
    venv.seed(0)
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=256, n_epochs=10, learning_rate=1e-3, seed=0, device="cpu")
    model.learn(total_timesteps=10240)
    # a uniformly random policy lasts 22 steps on average; SB3's episode statistics come from
    # the adapter's dones and terminal observations
    recent = np.mean([ep["l"] for ep in model.ep_info_buffer])
    greedy, _ = evaluate_policy(model, venv, n_eval_episodes=16)
    assert recent > 50 and greedy > 100, (recent, greedy)
