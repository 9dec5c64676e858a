"""Every gymnax environment under the metarl API, with a TaskSpace.

Classic-control envs get task spaces over their physics constants (ranges
around the defaults, as used in domain-randomisation work); the others have no
free fields until someone defines one (``GymnaxEnv(..., task_space=...)``).
"""

from __future__ import annotations

import gymnax

from envs.core import Environment
from envs.task_space import Field, TaskSpace

# name -> free fields. Ranges bracket gymnax's defaults.
PHYSICS_FIELDS: dict[str, tuple[Field, ...]] = {
    "CartPole-v1": (
        Field("gravity", 4.9, 19.6),
        Field("masscart", 0.5, 2.0),
        Field("masspole", 0.05, 0.5),
        Field("length", 0.25, 1.0),
        Field("force_mag", 5.0, 20.0),
    ),
    "Pendulum-v1": (
        Field("g", 5.0, 15.0),
        Field("m", 0.5, 2.0),
        Field("l", 0.5, 2.0),
    ),
    "Acrobot-v1": (
        Field("link_mass_1", 0.5, 2.0),
        Field("link_mass_2", 0.5, 2.0),
        Field("link_length_1", 0.5, 1.5),
    ),
    "MountainCar-v0": (
        Field("force", 0.0008, 0.0015),
        Field("gravity", 0.002, 0.003),
    ),
    "MountainCarContinuous-v0": (Field("power", 0.0010, 0.0020),),
}


def _cartpole_derived(p):
    return p.replace(total_mass=p.masscart + p.masspole, polemass_length=p.masspole * p.length)


DERIVED = {"CartPole-v1": _cartpole_derived}


class GymnaxEnv(Environment):
    """Delegates to a gymnax env; adds ``task_space``.

    ``step``/``reset`` are the gymnax base-class methods, which call the hooks
    below, so auto-reset and ``info['final_observation']`` behave exactly as
    in gymnax.
    """

    def __init__(self, name: str, task_fields: tuple[Field, ...] | None = None, **kwargs):
        super().__init__()
        self.inner, self._default = gymnax.make(name, **kwargs)
        self._name = name
        self._fields = PHYSICS_FIELDS.get(name, ()) if task_fields is None else task_fields

    @property
    def name(self) -> str:
        return self._name

    @property
    def default_params(self):
        return self._default

    @property
    def task_space(self) -> TaskSpace:
        return TaskSpace(self._default, self._fields, derive=DERIVED.get(self._name), name=self._name)

    def step_env(self, key, state, action, params):
        return self.inner.step_env(key, state, action, params)

    def reset_env(self, key, params):
        return self.inner.reset_env(key, params)

    def is_truncated(self, state, params):
        return self.inner.is_truncated(state, params)

    def observe(self, key, state, action, params):
        return self.inner.observe(key, state, action, params)

    def get_obs(self, state, params=None, key=None):
        return self.inner.get_obs(state, params=params, key=key)

    def is_terminated(self, state, params):
        return self.inner.is_terminated(state, params)

    @property
    def num_actions(self) -> int:
        return self.inner.num_actions

    def action_space(self, params=None):
        return self.inner.action_space(params if params is not None else self._default)

    def observation_space(self, params=None):
        return self.inner.observation_space(params if params is not None else self._default)

    def state_space(self, params=None):
        return self.inner.state_space(params if params is not None else self._default)

    def __hash__(self):  # static argument of gymnax's jitted step/reset
        return hash((type(self), self._name, self._fields))

    def __eq__(self, other):
        return type(other) is type(self) and (self._name, self._fields) == (other._name, other._fields)
