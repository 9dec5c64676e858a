"""Spaces, action checks and host copies shared by the gymnasium exports.

``task_observation_space`` builds an observation space that holds for every task of an
env's ``TaskSpace``; ``check_action`` refuses actions outside the action space with
:class:`InvalidActionError` (gymnasium's ``InvalidAction``, also an ``AssertionError``
like the ``assert action_space.contains(action)`` of gymnasium's classic-control envs)
and clips Box actions to their bounds, as gymnasium's continuous envs do.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnax.environments import spaces as gx_spaces

import envs

# the info entries every gymnax step adds; the export reports them in its own way
GYMNAX_INFO = ("final_observation", "terminated", "truncated")


class InvalidActionError(gymnasium.error.InvalidAction, AssertionError):
    """An action outside the action space (wrong type, shape or value, or NaN)."""


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


def _union(a: gymnasium.spaces.Space, b: gymnasium.spaces.Space) -> gymnasium.spaces.Space:
    """The smallest space of ``a``'s kind holding both (Box bounds widened elementwise)."""
    if isinstance(a, gymnasium.spaces.Box):
        return gymnasium.spaces.Box(np.minimum(a.low, b.low), np.maximum(a.high, b.high), a.shape, a.dtype)
    if isinstance(a, gymnasium.spaces.Dict):
        return gymnasium.spaces.Dict({k: _union(s, b[k]) for k, s in a.spaces.items()})
    if isinstance(a, gymnasium.spaces.Tuple):
        return gymnasium.spaces.Tuple(tuple(_union(s, t) for s, t in zip(a.spaces, b.spaces)))
    if a != b:
        raise ValueError(f"the observation space changes between tasks ({a} vs {b}); pass observation_space=")
    return a


def task_observation_space(env: Any, params: Any) -> gymnasium.spaces.Space:
    """An observation space that holds for ``params`` and every task of ``env.task_space``.

    Box bounds may depend on the task (a gridworld's time feature scales with its horizon).
    This takes the elementwise union of the spaces at ``params`` and at the task space's two
    corners (every free field at its low, then at its high bound): exact when the bounds are
    monotone in each field, as in every env here. tests/test_gymnasium_export_envs.py steps
    every native env on tasks drawn from its task-space box to check; pass
    ``observation_space=`` to the export to declare bounds instead."""
    space = to_gym_space(env.observation_space(params))
    task_space = getattr(env, "task_space", None)
    if task_space is None or task_space.dim == 0:
        return space
    for corner in (task_space.low, task_space.high):
        space = _union(space, to_gym_space(env.observation_space(task_space.from_vector(corner))))
    return space


def dtypes_match(space: gymnasium.spaces.Space, example: Any) -> bool:
    """Whether values shaped like ``example`` (arrays or ShapeDtypeStructs) already have ``space``'s dtypes."""
    if isinstance(space, gymnasium.spaces.Dict):
        return all(dtypes_match(s, example[k]) for k, s in space.spaces.items())
    if isinstance(space, gymnasium.spaces.Tuple):
        return all(dtypes_match(s, e) for s, e in zip(space.spaces, example))
    return np.dtype(example.dtype) == space.dtype


def host_copy(space: gymnasium.spaces.Space, x: Any) -> Any:
    """Numpy value of ``space``'s dtype, writable (one copy out of the JAX buffer)."""
    if isinstance(space, gymnasium.spaces.Dict):
        return {k: host_copy(s, x[k]) for k, s in space.spaces.items()}
    if isinstance(space, gymnasium.spaces.Tuple):
        return tuple(host_copy(s, xi) for s, xi in zip(space.spaces, x))
    return np.array(x, dtype=space.dtype)


def check_action(space: gymnasium.spaces.Space, action: Any, batch: int | None = None) -> Any:
    """Validate ``action`` (a batch of ``batch`` actions when given) -> numpy of the space's dtype.

    Raises :class:`InvalidActionError` naming the problem."""
    if isinstance(space, (gymnasium.spaces.Dict, gymnasium.spaces.Tuple)):
        keys = space.spaces.keys() if isinstance(space, gymnasium.spaces.Dict) else range(len(space.spaces))
        try:
            parts = {k: check_action(space.spaces[k], action[k], batch) for k in keys}
        except (KeyError, IndexError, TypeError) as err:
            raise InvalidActionError(f"{action!r} ({type(action)}) invalid: {err}") from None
        return parts if isinstance(space, gymnasium.spaces.Dict) else tuple(parts.values())
    if batch is None and isinstance(space, gymnasium.spaces.Discrete) and type(action) in (int, np.int64, np.int32):
        # the common single-env case, without building arrays
        if space.start <= action < space.start + space.n:
            return np.int32(action) if space.dtype == np.int64 else space.dtype.type(action)
        raise InvalidActionError(f"{action!r} ({type(action)}) invalid for {space}")
    shape = space.shape if batch is None else (batch, *space.shape)
    try:
        arr = np.asarray(action)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.shape != shape or arr.dtype.kind not in "biuf":
        raise InvalidActionError(f"{action!r} ({type(action)}) invalid: expected numbers of shape {shape} for {space}")
    if isinstance(space, gymnasium.spaces.Box):
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InvalidActionError(f"{action!r} invalid: NaN or infinite entries for {space}")
        return np.clip(arr, space.low, space.high).astype(space.dtype, copy=False)
    if isinstance(space, (gymnasium.spaces.Discrete, gymnasium.spaces.MultiDiscrete)):
        low = space.start
        high = space.start + (space.n if isinstance(space, gymnasium.spaces.Discrete) else space.nvec)
        if (arr.dtype.kind == "f" and not (np.round(arr) == arr).all()) or (arr < low).any() or (arr >= high).any():
            raise InvalidActionError(f"{action!r} ({type(action)}) invalid for {space}")
        return arr.astype(np.int32)
    if not space.contains(arr):
        raise InvalidActionError(f"{action!r} ({type(action)}) invalid for {space}")
    return arr


def resolve(name_or_env: Any, params: Any) -> tuple[Any, Any]:
    """``(env, params)`` from a registered name or an env object (its default task unless given)."""
    if isinstance(name_or_env, str):
        env, default = envs.make(name_or_env)
    else:
        env, default = name_or_env, name_or_env.default_params
    return env, default if params is None else params
