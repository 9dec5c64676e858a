"""Base class for metarl environments: gymnax's ``Environment`` plus a TaskSpace.

Native envs subclass :class:`Environment` and implement gymnax's hooks
(``step_env``, ``reset_env``, ``observation_space``, ``action_space``,
``default_params``) and :attr:`task_space`. ``step``/``reset`` are gymnax's own,
so gymnax wrappers and gymnax-style training code work unchanged.
"""

from __future__ import annotations

from gymnax.environments import environment as gymnax_env
from gymnax.environments import spaces  # noqa: F401  (re-exported for envs)

from envs.task_space import TaskSpace

EnvState = gymnax_env.EnvState
EnvParams = gymnax_env.EnvParams


class Environment(gymnax_env.Environment):
    """A gymnax environment whose ``params`` is a task drawn from ``task_space``."""

    @property
    def task_space(self) -> TaskSpace:
        """Free fields of ``params``; the default has none (a single task)."""
        return TaskSpace(self.default_params, (), name=self.name)

    def is_terminated(self, state, params):
        # gymnax calls this only through ``discount``; native envs report
        # termination from step_env instead.
        raise AttributeError(f"{self.name} reports termination from step_env")
