"""Export any env here as a gymnasium ``Env`` / ``VectorEnv`` (numpy in, numpy out).

PyTorch code (Stable-Baselines3, CleanRL) can then train on every env of the
suite. The JAX env stays pure; these classes hold the state and PRNG key on the
host side and call jitted ``reset``/``step`` functions.

* :func:`to_gymnasium` - a single env without auto-reset: when an episode ends
  the observation returned is the final one (``info['final_observation']`` of
  the gymnax step) and the caller must ``reset()``, as gymnasium requires.
* :func:`to_gymnasium_vector` - ``num_envs`` copies stepped by one jitted
  ``vmap``. Autoreset mode is **SAME_STEP** (gymnasium >= 1.1): the step that
  ends an episode already returns the first observation of the next one, and
  ``info['final_obs']`` holds the final observations of the whole batch with
  ``info['_final_obs']`` marking which rows ended (a dense array rather than
  gymnasium's object array, so no per-env Python loop). This is how gymnax
  auto-resets, so no extra reset computation is needed.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from gymnax.environments import spaces as gx_spaces

import envs


def to_gym_space(space: Any) -> gymnasium.spaces.Space:
    """Convert a gymnax space (Discrete, Box, Dict, Tuple) to its gymnasium twin."""
    if isinstance(space, gx_spaces.Discrete):
        return gymnasium.spaces.Discrete(int(space.n))
    if isinstance(space, gx_spaces.Box):
        dtype = np.dtype(space.dtype)
        low = np.broadcast_to(np.asarray(space.low, dtype), space.shape)
        high = np.broadcast_to(np.asarray(space.high, dtype), space.shape)
        return gymnasium.spaces.Box(low, high, tuple(space.shape), dtype)
    if isinstance(space, gx_spaces.Dict):
        return gymnasium.spaces.Dict({k: to_gym_space(s) for k, s in space.spaces.items()})
    if isinstance(space, gx_spaces.Tuple):
        return gymnasium.spaces.Tuple(tuple(to_gym_space(s) for s in space.spaces))
    raise ValueError(f"cannot convert space {space!r} to gymnasium")


def _to_numpy(space: gymnasium.spaces.Space, x: Any) -> Any:
    """Device value -> numpy in the dtype gymnasium expects for ``space``."""
    if isinstance(space, gymnasium.spaces.Dict):
        return {k: _to_numpy(s, x[k]) for k, s in space.spaces.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        return tuple(_to_numpy(s, xi) for s, xi in zip(space.spaces, x))
    return np.asarray(x, dtype=space.dtype)


def _to_jax_action(space: Any, action: Any) -> Any:
    if isinstance(space, gx_spaces.Dict):
        return {k: _to_jax_action(s, action[k]) for k, s in space.spaces.items()}
    if isinstance(space, gx_spaces.Tuple):
        return tuple(_to_jax_action(s, a) for s, a in zip(space.spaces, action))
    return jnp.asarray(np.asarray(action), dtype=space.dtype)


def _resolve(name_or_env: Any, params: Any) -> tuple[Any, Any]:
    if isinstance(name_or_env, str):
        env, default = envs.make(name_or_env)
    else:
        env, default = name_or_env, name_or_env.default_params
    return env, default if params is None else params


def _host_info(info: dict, skip: tuple[str, ...]) -> dict:
    return {k: np.asarray(v) for k, v in info.items() if k not in skip}


def _reset_key(env: Any) -> jax.Array:
    """A reset key drawn from the env's seeded ``np_random``; keeps the step-key stream in ``env._key``."""
    key = jax.random.key(int(env.np_random.integers(2**31 - 1)))
    env._key, key_reset = jax.random.split(key)
    return key_reset


def _step_key(env: Any) -> jax.Array:
    if env._state is None:
        raise ValueError("call reset() before step()")
    env._key, key_step = jax.random.split(env._key)
    return key_step


class GymnasiumEnv(gymnasium.Env):
    """One env of the suite behind gymnasium's ``Env`` API (no auto-reset).

    ``render_mode='rgb_array'`` is available when the env defines
    ``render(state, params) -> image array``. ``reset(options={'params': p})``
    switches the task.
    """

    def __init__(self, env: Any, params: Any, seed: int = 0, render_mode: str | None = None):
        self.env = env
        self.params = params
        self.metadata = {"render_modes": ["rgb_array"] if callable(getattr(env, "render", None)) else []}
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported by {env.name}")
        self.render_mode = render_mode
        self._gx_action_space = env.action_space(params)
        self.observation_space = to_gym_space(env.observation_space(params))
        self.action_space = to_gym_space(self._gx_action_space)
        self._reset_fn = jax.jit(env.reset)
        self._step_fn = jax.jit(env.step)
        self._initial_seed = seed
        self._key = None
        self._state = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self._np_random is None:
            seed = self._initial_seed
        super().reset(seed=seed)  # seeds self.np_random, the source of every JAX key
        if options and "params" in options:
            self.params = options["params"]
        obs, self._state = self._reset_fn(_reset_key(self), self.params)
        return _to_numpy(self.observation_space, obs), {}

    def step(self, action):
        key_step = _step_key(self)
        action = _to_jax_action(self._gx_action_space, action)
        _, self._state, reward, term, trunc, info = self._step_fn(key_step, self._state, action, self.params)
        # gymnax has already auto-reset the state; gymnasium wants the final obs
        obs = _to_numpy(self.observation_space, info["final_observation"])
        info = _host_info(info, ("final_observation", "terminated", "truncated"))
        return obs, float(reward), bool(term), bool(trunc), info

    def render(self):
        if self.render_mode != "rgb_array" or self._state is None:
            return None
        return np.asarray(self.env.render(self._state, self.params))


def to_gymnasium(name_or_env: Any, params: Any = None, seed: int = 0, render_mode: str | None = None) -> GymnasiumEnv:
    """A registered name (or an env object) as a single gymnasium ``Env``."""
    env, params = _resolve(name_or_env, params)
    return GymnasiumEnv(env, params, seed=seed, render_mode=render_mode)


class GymnasiumVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies in one jitted ``vmap``; SAME_STEP autoreset (see module doc).

    Every copy has its own task: ``tasks`` is a params pytree with leading axis
    ``num_envs`` (by default ``params`` repeated). ``reset(options={'tasks': t})``
    replaces them.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env: Any, num_envs: int, params: Any, tasks: Any = None, seed: int = 0):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.env = env
        self.num_envs = num_envs
        self._gx_action_space = env.action_space(params)
        self.single_observation_space = to_gym_space(env.observation_space(params))
        self.single_action_space = to_gym_space(self._gx_action_space)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.tasks = self._check_tasks(params if tasks is None else tasks, broadcast=tasks is None)
        self._initial_seed = seed
        self._key = None
        self._state = None
        self._reset_fn = jax.jit(jax.vmap(env.reset))
        self._step_fn = jax.jit(self._step_batch)

    def _check_tasks(self, tasks: Any, broadcast: bool) -> Any:
        if broadcast:
            return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (self.num_envs, *jnp.shape(x))), tasks)
        leading = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in jax.tree.leaves(tasks)}
        if leading != {self.num_envs}:
            raise ValueError(f"tasks must have leading axis num_envs={self.num_envs}, got {sorted(map(str, leading))}")
        return jax.tree.map(jnp.asarray, tasks)

    def _step_batch(self, key, state, actions, tasks):
        keys = jax.random.split(key, self.num_envs)
        return jax.vmap(self.env.step)(keys, state, actions, tasks)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self._np_random is None:
            seed = self._initial_seed
        if isinstance(seed, (list, tuple)):
            raise ValueError("pass one int seed; the per-env keys are split from it")
        super().reset(seed=seed)
        if options and "tasks" in options:
            self.tasks = self._check_tasks(options["tasks"], broadcast=False)
        obs, self._state = self._reset_fn(jax.random.split(_reset_key(self), self.num_envs), self.tasks)
        return _to_numpy(self.observation_space, obs), {}

    def step(self, actions):
        key_step = _step_key(self)
        actions = _to_jax_action(self._gx_action_space, actions)
        obs, self._state, reward, term, trunc, info = self._step_fn(key_step, self._state, actions, self.tasks)
        term, trunc = np.asarray(term), np.asarray(trunc)
        infos = _host_info(info, ("final_observation", "terminated", "truncated"))
        # gymnasium's vector-info convention: ``_key`` marks the envs that report ``key``
        infos.update({f"_{k}": np.ones(self.num_envs, bool) for k in list(infos)})
        done = term | trunc
        if done.any():
            infos["final_obs"] = _to_numpy(self.observation_space, info["final_observation"])
            infos["_final_obs"] = done
        return (
            _to_numpy(self.observation_space, obs),
            np.asarray(reward, np.float32),
            term,
            trunc,
            infos,
        )


def to_gymnasium_vector(
    name_or_env: Any, num_envs: int, params: Any = None, tasks: Any = None, seed: int = 0
) -> GymnasiumVectorEnv:
    """A registered name (or env) as a gymnasium ``VectorEnv`` of ``num_envs`` copies.

    ``tasks``: optional batched params (leading axis ``num_envs``), one task per copy.
    """
    env, params = _resolve(name_or_env, params)
    return GymnasiumVectorEnv(env, num_envs, params, tasks=tasks, seed=seed)
