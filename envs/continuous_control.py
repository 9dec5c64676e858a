"""What the physics adapters (brax, MuJoCo Playground) share: actions in [-1, 1]^n and unbounded observations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from gymnax.environments import spaces

from envs.core import Environment


class ContinuousControlEnv(Environment):
    """An ``Environment`` whose subclass calls :meth:`_set_sizes` once its ``reset_env`` can be traced."""

    def _set_sizes(self, action_size: int) -> None:
        self._act_size = int(action_size)
        # tracing the reset is enough (brax's own ``observation_size`` runs an eager reset: a minute on CPU)
        self._obs_size = int(jax.eval_shape(self.reset_env, jax.random.key(0), self.default_params)[0].shape[0])

    @property
    def num_actions(self) -> int:
        return self._act_size

    def action_space(self, params=None):
        return spaces.Box(-1.0, 1.0, (self._act_size,), jnp.float32)

    def observation_space(self, params=None):
        return spaces.Box(-jnp.inf, jnp.inf, (self._obs_size,), jnp.float32)
