"""Any env here as a Stable-Baselines3 ``VecEnv`` (install the ``[sb3]`` extra).

:func:`to_sb3` wraps the gymnasium vector export in SAME_STEP autoreset mode,
which is SB3's own convention: a copy whose episode ended is already reset, its
final observation is in ``infos[i]['terminal_observation']`` and
``infos[i]['TimeLimit.truncated']`` tells a time-out from a terminal state.
Observations, rewards and dones are the arrays the export copied once out of the
JAX buffers; nothing is copied again. ``VecEnv.seed(s)`` seeds copy ``i`` with
``s + i`` at the next reset, as SB3's ``DummyVecEnv`` does. Env-specific info
entries go to every copy's dict; a ``success`` flag is also given as
``is_success``, the key SB3's callbacks read.

``stable_baselines3`` is imported when this module is, not by ``envs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from envs.gymnasium_vector import GymnasiumVectorEnv, to_gymnasium_vector


class SB3VecEnv(VecEnv):
    """SB3's ``VecEnv`` interface over a SAME_STEP :class:`GymnasiumVectorEnv`."""

    def __init__(self, venv: GymnasiumVectorEnv):
        if venv.metadata["autoreset_mode"].value != "SameStep":
            raise ValueError("SB3 needs to_gymnasium_vector(..., autoreset_mode='same_step')")
        self.venv = venv
        self._actions = None
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)

    def reset(self):
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        options = self._options[0] if self._options[0] else None
        obs, _ = self.venv.reset(seed=seeds, options=options)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, rewards, term, trunc, info = self.venv.step(self._actions)
        dones = term | trunc
        extras = {k: v for k, v in info.items() if not k.startswith("_") and k != "final_obs"}
        if "success" in extras:
            extras["is_success"] = extras["success"]
        infos: list[dict[str, Any]] = [{k: v[i] for k, v in extras.items()} for i in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
        return obs, rewards, dones, infos

    def close(self) -> None:
        self.venv.close()

    def _count(self, indices) -> int:
        return len(list(self._get_indices(indices)))

    # every copy shares the exported env object: attributes and methods are the vector env's
    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * self._count(indices)

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * self._count(indices)


def to_sb3(name_or_env: Any, num_envs: int, params: Any = None, tasks: Any = None, seed: int = 0) -> SB3VecEnv:
    """A registered name (or env) as an SB3 ``VecEnv`` of ``num_envs`` copies (one task per copy)."""
    return SB3VecEnv(to_gymnasium_vector(name_or_env, num_envs, params=params, tasks=tasks, seed=seed,
                                         autoreset_mode="same_step"))
