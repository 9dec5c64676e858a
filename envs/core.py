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


class StaticIdentity:
    """Equality and hash from ``_static()``, the settings that shape the env's arrays.

    ``jit`` takes envs as static arguments, so two envs with the same settings
    must be equal (one compiled program) and different settings must differ.
    """

    def _static(self) -> tuple:
        raise AttributeError(f"{type(self).__name__} must define _static()")

    def __hash__(self) -> int:
        return hash((type(self), *self._static()))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._static() == other._static()
