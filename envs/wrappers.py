"""Wrappers that keep the gymnax step/reset signatures.

* :class:`TaskResetWrapper` — the task of each episode is supplied from outside:
  ``step(key, state, action, next_task)`` finishes the current episode on the
  task stored in the state and, when it ends, resets to ``next_task``. A
  teacher can therefore change tasks between episodes without recompiling.
* :class:`LogWrapper` — episode return, length and success in ``info``.
* :class:`FlattenObservation` — ravel observations to a vector.
* :class:`AnyStepSuccess` — ``info['success']`` becomes "true at some step of
  this episode" (Meta-World's metric) for envs that only flag the current step.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import spaces


class Wrapper:
    """Delegates everything it does not override to the wrapped env."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name):
        return getattr(self._env, name)

    @property
    def unwrapped(self):
        return getattr(self._env, "unwrapped", self._env)


def _select(pred, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


@struct.dataclass
class TaskState:
    env_state: Any
    task: Any  # params of the episode in progress


class TaskResetWrapper(Wrapper):
    """Per-episode tasks: the ``params`` passed to ``step`` is the *next* task.

    Needs a gymnax-style env (``step_env``/``reset_env``/``is_truncated``); it
    performs exactly one reset per step, like gymnax's own auto-reset.
    ``info['task']`` holds the task of the transition just taken.
    """

    def reset(self, key, params):
        obs, state = self._env.reset_env(key, params)
        return obs, TaskState(state, params)

    def step(self, key, state: TaskState, action, next_task):
        key_step, key_reset = jax.random.split(key)
        task = state.task
        obs_st, env_st, reward, terminated, info = self._env.step_env(key_step, state.env_state, action, task)
        truncated = self._env.is_truncated(env_st, task)
        done = jnp.logical_or(terminated, truncated)
        obs_re, env_re = self._env.reset_env(key_reset, next_task)
        new_state = TaskState(_select(done, env_re, env_st), _select(done, next_task, task))
        info = {
            **info,
            "terminated": terminated,
            "truncated": truncated,
            "final_observation": obs_st,
            "task": task,
        }
        return _select(done, obs_re, obs_st), new_state, reward, terminated, truncated, info


@struct.dataclass
class LogState:
    env_state: Any
    episode_return: jax.Array
    episode_length: jax.Array
    returned_episode_return: jax.Array
    returned_episode_length: jax.Array
    returned_episode_success: jax.Array


class LogWrapper(Wrapper):
    """Adds episode statistics to ``info``.

    ``info['returned_episode']`` is True on the step an episode ends; then
    ``returned_episode_return/length/success`` describe that episode. Success
    is ``info['episode_success']`` (success at any step) when the env provides
    it, else ``info['success']`` at the last step, else "ended by termination
    with positive return".
    """

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        zero_f, zero_i = jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32)
        return obs, LogState(state, zero_f, zero_i, zero_f, zero_i, jnp.zeros((), jnp.bool_))

    def step(self, key, state: LogState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(key, state.env_state, action, params)
        done = jnp.logical_or(terminated, truncated)
        ep_return = state.episode_return + reward.astype(jnp.float32)
        ep_length = state.episode_length + 1
        fallback = info.get("success", jnp.logical_and(terminated, ep_return > 0))
        success = info.get("episode_success", fallback)  # "at any step" when the env tracks it
        new = LogState(
            env_state=env_state,
            episode_return=ep_return * (1 - done),
            episode_length=ep_length * (1 - done),
            returned_episode_return=jnp.where(done, ep_return, state.returned_episode_return),
            returned_episode_length=jnp.where(done, ep_length, state.returned_episode_length),
            returned_episode_success=jnp.where(done, success, state.returned_episode_success),
        )
        info = {
            **info,
            "returned_episode": done,
            "returned_episode_return": new.returned_episode_return,
            "returned_episode_length": new.returned_episode_length,
            "returned_episode_success": new.returned_episode_success,
        }
        return obs, new, reward, terminated, truncated, info


class FlattenObservation(Wrapper):
    """Ravel observations (and ``final_observation``) to 1-D float32."""

    def observation_space(self, params=None):
        space = self._env.observation_space(params)
        size = int(jnp.prod(jnp.array(space.shape)))
        return spaces.Box(
            jnp.ravel(jnp.broadcast_to(space.low, space.shape)),
            jnp.ravel(jnp.broadcast_to(space.high, space.shape)),
            (size,),
            jnp.float32,
        )

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return jnp.ravel(obs).astype(jnp.float32), state

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        if "final_observation" in info:
            info = {**info, "final_observation": jnp.ravel(info["final_observation"]).astype(jnp.float32)}
        return jnp.ravel(obs).astype(jnp.float32), state, reward, terminated, truncated, info


@struct.dataclass
class RunningMeanStd:
    """Batch-updated running moments (Chan et al. parallel algorithm)."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, shape) -> "RunningMeanStd":
        return cls(jnp.zeros(shape), jnp.ones(shape), jnp.asarray(1e-4))

    def update(self, batch: jax.Array) -> "RunningMeanStd":
        b_mean, b_var, b_count = batch.mean(0), batch.var(0), batch.shape[0]
        delta = b_mean - self.mean
        total = self.count + b_count
        mean = self.mean + delta * b_count / total
        m2 = self.var * self.count + b_var * b_count + delta**2 * self.count * b_count / total
        return RunningMeanStd(mean, m2 / total, total)

    def normalize(self, x: jax.Array, clip: float = 10.0) -> jax.Array:
        return jnp.clip((x - self.mean) / jnp.sqrt(self.var + 1e-8), -clip, clip)


@struct.dataclass
class NormalizeState:
    env_state: Any
    rms: RunningMeanStd


class NormalizeObservation(Wrapper):
    """Running mean/std normalisation of observations, statistics kept in the state.

    Each (vmapped) env keeps its own running moments, updated with every
    observation it emits (the reset one included), as gymnasium's
    ``NormalizeObservation`` does per env. ``info["final_observation"]`` is
    normalised with the same statistics. For statistics shared across a batch,
    use :class:`RunningMeanStd` on the batch directly (PPO's ``normalize_obs``).
    """

    def __init__(self, env, clip: float = 10.0):
        super().__init__(env)
        self.clip = clip

    def _observe(self, rms: RunningMeanStd, obs: jax.Array) -> tuple[RunningMeanStd, jax.Array]:
        rms = rms.update(obs.astype(jnp.float32)[None])
        return rms, rms.normalize(obs.astype(jnp.float32), self.clip)

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        rms, obs = self._observe(RunningMeanStd.create(jnp.shape(obs)), obs)
        return obs, NormalizeState(state, rms)

    def step(self, key, state: NormalizeState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(key, state.env_state, action, params)
        rms, obs = self._observe(state.rms, obs)
        if "final_observation" in info:
            info = {**info, "final_observation": rms.normalize(info["final_observation"].astype(jnp.float32), self.clip)}
        return obs, NormalizeState(env_state, rms), reward, terminated, truncated, info


@struct.dataclass
class SuccessState:
    env_state: Any
    succeeded: jax.Array  # bool: info["success"] was true at some step of the current episode


class AnyStepSuccess(Wrapper):
    """``info["success"]`` becomes "true at some step of this episode"; envs without the key pass unchanged."""

    def reset(self, key, params=None):
        obs, state = self._env.reset(key, params)
        return obs, SuccessState(state, jnp.zeros((), jnp.bool_))

    def step(self, key, state: SuccessState, action, params=None):
        obs, env_state, reward, terminated, truncated, info = self._env.step(key, state.env_state, action, params)
        if not isinstance(info, dict) or "success" not in info:
            return obs, SuccessState(env_state, state.succeeded), reward, terminated, truncated, info
        succeeded = state.succeeded | jnp.asarray(info["success"], jnp.bool_)
        done = jnp.logical_or(terminated, truncated)
        new_state = SuccessState(env_state, succeeded & ~done)  # the auto-reset starts a fresh episode
        return obs, new_state, reward, terminated, truncated, {**info, "success": succeeded}
