"""``RandomizedGoals``: every episode draws its object start and goal anew within the task's class.

Meta-World's ``random_init`` (what Continual World's ``random_init_all``
keeps on) re-samples the positions at each reset, so a "task" is a class, not
one goal variation. Here the params name the class (``task_id``); the
positions in them are ignored: each reset draws ``obj_init`` and ``goal`` from
the class's ranges with the class's redraw rule
(:class:`envs.manipulation.task_space.ManipulationTaskSpace`) and the episode
keeps that draw in its state.
"""

from __future__ import annotations

from typing import Any

import jax
from flax import struct

from envs.core import Environment, StaticIdentity
from envs.manipulation.env import Manipulation, ManipParams


@struct.dataclass
class EpisodeTask:
    env_state: Any
    task: ManipParams  # this episode's draw


class RandomizedGoals(StaticIdentity, Environment):
    """A :class:`Manipulation` env whose episodes draw their own positions (see the module docstring)."""

    def __init__(self, base: Manipulation):
        super().__init__()
        self.base = base
        self._space = base.task_space

    def _static(self) -> tuple:
        return ("randomized", *self.base._static())

    @property
    def name(self) -> str:
        return f"RandomizedGoals({self.base.name})"

    @property
    def task_names(self) -> tuple[str, ...]:
        return self.base.task_names

    def draw(self, key: jax.Array, params: ManipParams) -> ManipParams:
        """A fresh goal variation of ``params``'s class."""
        task = self._space.sample_in_class(key, self.base.local_index(params))
        return task.replace(max_steps_in_episode=params.max_steps_in_episode)

    def reset_env(self, key, params: ManipParams):
        k_draw, k_reset = jax.random.split(key)
        task = self.draw(k_draw, params)
        obs, state = self.base.reset_env(k_reset, task)
        return obs, EpisodeTask(state, task)

    def step_env(self, key, state: EpisodeTask, action, params: ManipParams):
        obs, env_state, reward, terminated, info = self.base.step_env(key, state.env_state, action, state.task)
        return obs, state.replace(env_state=env_state), reward, terminated, info

    def is_truncated(self, state: EpisodeTask, params: ManipParams):
        return self.base.is_truncated(state.env_state, state.task)

    def params_for(self, task: str, obj_init=None, goal=None) -> ManipParams:
        return self.base.params_for(task, obj_init, goal)

    @property
    def default_params(self) -> ManipParams:
        return self.base.default_params

    @property
    def task_space(self):
        return self._space

    @property
    def num_actions(self) -> int:
        return self.base.num_actions

    def action_space(self, params=None):
        return self.base.action_space(params)

    def observation_space(self, params=None):
        return self.base.observation_space(params)
