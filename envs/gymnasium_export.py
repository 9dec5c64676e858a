"""Export any env here to gymnasium (numpy in, numpy out) for PyTorch code such as
Stable-Baselines3 or CleanRL.

* :func:`to_gymnasium` - a single ``Env`` without auto-reset: when an episode ends
  the observation returned is the final one and the caller must ``reset()``, as
  gymnasium requires.
* :func:`to_gymnasium_vector` (``envs.gymnasium_vector``) - ``num_envs`` copies in
  one jitted ``vmap``, in either autoreset mode.
* :func:`envs.sb3_export.to_sb3` - the vector export as a Stable-Baselines3 ``VecEnv``.

The JAX env stays pure: the exported object holds the key, state and task as one
packed device vector (``envs/packing.py``), and each ``step`` is one jitted call
that splits the key, steps the env and appends what the host needs, copied out
once. The single env runs the vector program with one copy, so both exports
share one compile per env and one behaviour.

The observation space holds for every task of the env's ``TaskSpace``
(``task_observation_space``), so ``reset(options={'params': task})`` never emits
observations outside it. Invalid actions raise ``InvalidActionError``.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from envs import gymnasium_spaces as spaces
from envs.gymnasium_spaces import InvalidActionError, task_observation_space, to_gym_space
from envs.gymnasium_vector import GymnasiumVectorEnv, VectorPrograms, check_vector_env, to_gymnasium_vector


class GymnasiumEnv(gymnasium.Env):
    """One env of the suite behind gymnasium's ``Env`` API (no auto-reset).

    ``render_mode='rgb_array'`` is available when the env defines
    ``render(state, params) -> image array``. ``reset(options={'params': p})``
    switches the task.
    """

    def __init__(
        self,
        env: Any,
        params: Any,
        seed: int = 0,
        render_mode: str | None = None,
        observation_space: gymnasium.spaces.Space | None = None,
    ):
        self.env = env
        self.metadata = {"render_modes": ["rgb_array"] if callable(getattr(env, "render", None)) else []}
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode {render_mode!r} is not supported by {env.name}")
        self.render_mode = render_mode
        self.observation_space = observation_space or task_observation_space(env, params)
        self.action_space = to_gym_space(env.action_space(params))
        self._set_params(params)
        self._device_actions = None
        if isinstance(self.action_space, gymnasium.spaces.Discrete) and self.action_space.n <= 1024:
            # every discrete action already on the device: a step needs no host-to-device copy
            start = int(self.action_space.start)
            self._device_actions = list(jnp.arange(start, start + self.action_space.n, dtype=jnp.int32)[:, None])
        self._initial_seed = seed
        self._packed = None
        self._row0 = (lambda x: x[0]) if isinstance(self.observation_space, gymnasium.spaces.Box) else (
            lambda x: jax.tree.map(lambda leaf: leaf[0], x))  # tree.map costs ~2 µs of a ~20 µs step

    def _set_params(self, params: Any) -> None:
        self.params = params
        one = jax.tree.map(lambda x: jnp.asarray(x)[None], params)
        # SAME_STEP with one copy: the step's final observation is what gymnasium's Env returns
        self._programs = VectorPrograms(self.env, one, self.action_space, next_step=False)
        example = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), self._programs.obs_example())
        self._obs_cast = not spaces.dtypes_match(self.observation_space, example)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self._np_random is None:
            seed = self._initial_seed
        super().reset(seed=seed)  # seeds self.np_random, the source of every JAX key
        if options and "params" in options:
            self._set_params(options["params"])
        seeds = self.np_random.integers(2**32, size=1, dtype=np.uint32)
        self._packed, obs = self._programs.reset(seeds, self._programs.packed_tasks)
        # to numpy before taking the row: indexing a device array is a JAX dispatch (~30 µs)
        return spaces.host_copy(self.observation_space, self._row0(jax.device_get(obs))), {}

    def step(self, action):
        if self._packed is None:
            raise gymnasium.error.ResetNeeded("call reset() before step()")
        action = spaces.check_action(self.action_space, action)
        if self._device_actions is not None:
            action = self._device_actions[int(action) - self.action_space.start]
        else:
            action = jax.tree.map(lambda x: x[None], action)
        self._packed = self._programs.step(self._packed, action)
        _, scalars, extra, final = self._programs.read(self._packed)
        reward, term, trunc = scalars[:, 0].tolist()
        obs = self._row0(final)  # gymnax has auto-reset; gymnasium wants the final obs
        if self._obs_cast:
            obs = spaces.host_copy(self.observation_space, obs)
        return obs, reward, term != 0.0, trunc != 0.0, {k: v[0] for k, v in extra.items()}

    @property
    def state(self) -> Any:
        """The env state after the last step or reset (gymnax auto-resets it at episode ends)."""
        return None if self._packed is None else jax.tree.map(lambda x: x[0], self._programs.state(self._packed))

    def render(self):
        if self.render_mode != "rgb_array" or self._packed is None:
            return None
        return np.array(self.env.render(self.state, self.params))


def to_gymnasium(
    name_or_env: Any,
    params: Any = None,
    seed: int = 0,
    render_mode: str | None = None,
    observation_space: gymnasium.spaces.Space | None = None,
) -> GymnasiumEnv:
    """A registered name (or an env object) as a single gymnasium ``Env``.

    ``observation_space``: declared bounds, instead of the union over the task space."""
    env, params = spaces.resolve(name_or_env, params)
    return GymnasiumEnv(env, params, seed=seed, render_mode=render_mode, observation_space=observation_space)


__all__ = [
    "GymnasiumEnv",
    "GymnasiumVectorEnv",
    "InvalidActionError",
    "check_vector_env",
    "task_observation_space",
    "to_gym_space",
    "to_gymnasium",
    "to_gymnasium_vector",
]
