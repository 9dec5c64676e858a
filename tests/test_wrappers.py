"""Wrappers: per-episode tasks, episode statistics, flattening, running moments."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

import envs
from envs import Environment, Field, TaskSpace
from envs.core import spaces
from envs.wrappers import FlattenObservation, LogWrapper, RunningMeanStd, TaskResetWrapper


@struct.dataclass
class CounterParams:
    max_steps_in_episode: int = 100
    reward_scale: float = 1.0
    length: int = 3


@struct.dataclass
class CounterState:
    time: int


class CounterEnv(Environment):
    """Deterministic toy: reward ``scale * t`` at step t, terminates at t == length.

    The observation shows ``(t, scale)`` so a test can read which task it is on.
    """

    @property
    def default_params(self) -> CounterParams:
        return CounterParams()

    @property
    def task_space(self) -> TaskSpace:
        return TaskSpace(
            self.default_params,
            (Field("reward_scale", -10.0, 10.0), Field("length", 1, 5, kind="int")),
            name="counter",
        )

    def step_env(self, key, state, action, params):
        t = state.time + 1
        reward = (params.reward_scale * t).astype(jnp.float32)
        terminated = t >= params.length
        new = CounterState(time=t)
        return self._obs(new, params), new, reward, terminated, {}

    def reset_env(self, key, params):
        state = CounterState(time=jnp.int32(0))
        return self._obs(state, params), state

    def _obs(self, state, params):
        return jnp.array([state.time, params.reward_scale], jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-100.0, 100.0, (2,))

    def action_space(self, params=None):
        return spaces.Discrete(2)


TASK_A = CounterParams(reward_scale=1.0, length=3)
TASK_B = CounterParams(reward_scale=10.0, length=2)
TASK_C = CounterParams(reward_scale=-7.0, length=4)


def run(env, params, next_tasks, key=jax.random.key(0)):
    """Reset on ``params`` and step once per entry of the (stacked) ``next_tasks``."""
    obs, state = env.reset(key, params)

    def body(state, inp):
        k, task = inp
        obs, state, reward, term, trunc, info = env.step(k, state, 0, task)
        return state, (obs, reward, term, trunc, info)

    n = jax.tree.leaves(next_tasks)[0].shape[0]
    _, out = jax.lax.scan(body, state, (jax.random.split(key, n), next_tasks))
    return out


def stack(*tasks):
    return envs.stack_tasks([jax.tree.map(jnp.asarray, t) for t in tasks])


def test_task_reset_switches_only_at_episode_boundary():
    env = TaskResetWrapper(CounterEnv())
    # C is offered during A's episode and must be ignored; B is offered at A's last step.
    nexts = stack(TASK_C, TASK_C, TASK_B, TASK_C, TASK_A, TASK_C)
    obs, reward, term, trunc, info = jax.jit(run, static_argnums=0)(env, jax.tree.map(jnp.asarray, TASK_A), nexts)
    np.testing.assert_allclose(reward, [1, 2, 3, 10, 20, 1])
    assert term.tolist() == [False, False, True, False, True, False]
    assert not bool(trunc.any())
    # info["task"] is the task of the transition just taken
    np.testing.assert_allclose(info["task"].reward_scale, [1, 1, 1, 10, 10, 1])
    # after a terminal step the obs already belongs to the next task; final_observation is the old one
    np.testing.assert_allclose(obs[2], [0, 10])
    np.testing.assert_allclose(info["final_observation"][2], [3, 1])
    np.testing.assert_allclose(obs[4], [0, 1])
    np.testing.assert_allclose(info["final_observation"][4], [2, 10])
    # when not done, final_observation equals the returned obs
    np.testing.assert_allclose(info["final_observation"][0], obs[0])


def test_task_reset_on_truncation_under_vmap():
    env = TaskResetWrapper(CounterEnv())
    short = CounterParams(max_steps_in_episode=2, reward_scale=1.0, length=5)
    starts = stack(short, TASK_B)
    nexts = jax.tree.map(lambda x: jnp.stack([x] * 3, axis=1), stack(TASK_B, TASK_A))  # [env, step]
    out = jax.jit(jax.vmap(lambda p, n, k: run(env, p, n, k)))(starts, nexts, jax.random.split(jax.random.key(1), 2))
    obs, reward, term, trunc, info = out
    # env 0: truncated at t=2 (never terminates), then B's first step
    np.testing.assert_allclose(reward[0], [1, 2, 10])
    assert trunc[0].tolist() == [False, True, False] and not bool(term[0].any())
    # env 1: B terminates at t=2, then A
    np.testing.assert_allclose(reward[1], [10, 20, 1])
    assert term[1].tolist() == [False, True, False]


def test_log_wrapper_episode_statistics():
    env = LogWrapper(TaskResetWrapper(CounterEnv()))
    nexts = stack(TASK_B, TASK_B, TASK_B, TASK_C, TASK_C, TASK_A, TASK_A, TASK_A, TASK_A)
    _, reward, term, _, info = jax.jit(run, static_argnums=0)(env, jax.tree.map(jnp.asarray, TASK_A), nexts)
    # A: 1+2+3 = 6 in 3 steps; B: 10+20 = 30 in 2; C: -7-14-21-28 = -70 in 4
    assert info["returned_episode"].tolist() == [False, False, True, False, True, False, False, False, True]
    np.testing.assert_allclose(info["returned_episode_return"], [0, 0, 6, 6, 30, 30, 30, 30, -70])
    assert info["returned_episode_length"].tolist() == [0, 0, 3, 3, 2, 2, 2, 2, 4]
    # default success: terminated with a positive return
    assert info["returned_episode_success"].tolist() == [False, False, True, True, True, True, True, True, False]
    assert info["returned_episode_return"].dtype == jnp.float32


def test_log_wrapper_counts_truncated_episodes_and_resets_counters():
    env = LogWrapper(CounterEnv())
    params = CounterParams(max_steps_in_episode=2, reward_scale=3.0, length=10)
    obs, state = env.reset(jax.random.key(0), params)
    returns = []
    for i in range(5):
        obs, state, reward, term, trunc, info = env.step(jax.random.key(i), state, 0, params)
        returns.append(float(info["returned_episode_return"]))
    # episodes of 2 steps: 3 + 6 = 9, truncated (not successful)
    assert returns == [0.0, 9.0, 9.0, 9.0, 9.0]
    assert int(state.returned_episode_length) == 2 and not bool(state.returned_episode_success)
    assert float(state.episode_return) == 3.0 and int(state.episode_length) == 1


class SuccessEnv(CounterEnv):
    def step_env(self, key, state, action, params):
        obs, state, reward, terminated, info = super().step_env(key, state, action, params)
        return obs, state, reward, terminated, {"success": state.time == 2}


def test_log_wrapper_uses_env_success_flag():
    env = LogWrapper(SuccessEnv())
    out = run(env, TASK_C, stack(*[TASK_C] * 4))  # negative returns, but the env says success
    assert out[4]["returned_episode_success"].tolist() == [False, False, False, False]
    out = run(env, TASK_B, stack(*[TASK_B] * 2))
    assert out[4]["returned_episode_success"].tolist() == [False, True]


def test_flatten_observation_on_minatar():
    base, params = envs.make("Breakout-MinAtar")
    env = FlattenObservation(base)
    space = env.observation_space(params)
    assert space.shape == (400,)
    obs, state = env.reset(jax.random.key(0), params)
    assert obs.shape == (400,) and obs.dtype == jnp.float32
    base_obs, _ = base.reset(jax.random.key(0), params)
    np.testing.assert_array_equal(obs, np.ravel(base_obs).astype(np.float32))
    obs, state, reward, term, trunc, info = jax.jit(env.step)(jax.random.key(1), state, 1, params)
    assert obs.shape == (400,) and info["final_observation"].shape == (400,)
    assert bool(space.contains(obs))


def test_running_mean_std_matches_numpy():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(3, 500, 4)).astype(np.float32)
    rms = RunningMeanStd.create((4,))
    update = jax.jit(RunningMeanStd.update)
    for batch in data:
        rms = update(rms, jnp.asarray(batch))
    flat = data.reshape(-1, 4)
    # the 1e-4 prior count (mean 0, var 1) shifts the moments by ~1e-7 only
    np.testing.assert_allclose(rms.mean, flat.mean(0), rtol=1e-4)
    np.testing.assert_allclose(rms.var, flat.var(0), rtol=1e-4)
    z = rms.normalize(jnp.asarray(flat))
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-3)
    np.testing.assert_allclose(np.asarray(z).std(0), 1.0, atol=1e-3)
    assert float(jnp.max(rms.normalize(jnp.full((4,), 1e6)))) == pytest.approx(10.0)


def test_normalize_observation_tracks_running_moments():
    from envs.wrappers import NormalizeObservation

    env, params = envs.make("CartPole-v1")
    wrapped = NormalizeObservation(env)
    key = jax.random.PRNGKey(3)
    obs, state = wrapped.reset(key, params)
    raw = [env.reset(key, params)[0]]
    inner_state = env.reset(key, params)[1]
    step = jax.jit(wrapped.step)
    for i in range(30):
        k = jax.random.PRNGKey(100 + i)
        obs, state, *_ = step(k, state, jnp.int32(i % 2), params)
        raw_obs, inner_state, *_ = env.step(k, inner_state, jnp.int32(i % 2), params)
        raw.append(raw_obs)
    raw = np.stack([np.asarray(r) for r in raw]).astype(np.float64)
    # running moments of every observation seen so far, merged with the prior
    # (mean 0, var 1, count 1e-4) that RunningMeanStd starts from
    c0, n = 1e-4, len(raw)
    mean = raw.sum(0) / (n + c0)
    var = (c0 * 1.0 + ((raw - mean) ** 2).sum(0) + c0 * mean**2) / (n + c0)
    np.testing.assert_allclose(state.rms.mean, mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state.rms.var, var, rtol=1e-3, atol=1e-8)
    expected = (raw[-1] - mean) / np.sqrt(var + 1e-8)
    np.testing.assert_allclose(obs, np.clip(expected, -10, 10), rtol=2e-3, atol=1e-4)
