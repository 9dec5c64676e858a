"""What an agent needs to know about an env: observation size and action space.

Also the checks that PPO's config validation and constructor share: the
env's action kind and whether ``env_params`` is one task or a batch of them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import spaces


def env_name(env: Any) -> str:
    return getattr(env, "name", type(env).__name__)


def is_continuous(env: Any) -> bool:
    """True for a ``Box`` action space, False for ``Discrete``; anything else is an error."""
    space = env.action_space(env.default_params)
    if isinstance(space, spaces.Discrete):
        return False
    if isinstance(space, spaces.Box):
        return True
    raise ValueError(f"{env_name(env)}: unsupported action space {type(space).__name__}")


def batched_params(env: Any, env_params: Any, num_envs: int) -> bool:
    """True if ``env_params`` carries a leading ``num_envs`` axis (one task per env)."""
    default = env.default_params
    if jax.tree.structure(env_params) != jax.tree.structure(default):
        raise ValueError(f"env_params is not a {type(default).__name__} for {env_name(env)}")
    extra = {np.ndim(g) - np.ndim(r) for g, r in zip(jax.tree.leaves(env_params), jax.tree.leaves(default))}
    if extra == {0}:
        return False
    if extra == {1}:
        leading = {np.shape(g)[0] for g in jax.tree.leaves(env_params)}
        if leading != {num_envs}:
            raise ValueError(f"env_params batch has leading axis {sorted(leading)}, expected num_envs={num_envs}")
        return True
    raise ValueError("env_params must be one task or a batch with leading axis num_envs")


def per_env_params(env: Any, env_params: Any, num_envs: int) -> Any:
    """``env_params`` with a leading ``num_envs`` axis: a batch as given, one task repeated."""
    if batched_params(env, env_params, num_envs):
        return env_params
    return jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x), (num_envs,) + np.shape(x)), env_params)


@dataclasses.dataclass(frozen=True, eq=False)
class EnvSpec:
    """Flat observation size and the action space (bounds only for continuous actions)."""

    obs_dim: int
    action_dim: int  # number of actions (discrete) or action entries (continuous)
    continuous: bool
    action_shape: tuple[int, ...] = ()
    action_low: np.ndarray | None = None  # float32, flat [action_dim]
    action_high: np.ndarray | None = None

    @classmethod
    def of(cls, env: Any) -> EnvSpec:
        default = env.default_params
        obs_dim = int(math.prod(env.observation_space(default).shape))
        space = env.action_space(default)
        if not is_continuous(env):
            return cls(obs_dim, int(space.n), False)
        shape = tuple(space.shape)
        bound = lambda b: np.broadcast_to(np.asarray(b, np.float32), shape).reshape(-1)  # noqa: E731
        return cls(obs_dim, int(math.prod(shape)), True, shape, bound(space.low), bound(space.high))
