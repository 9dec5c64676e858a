"""Name -> environment registry: ``envs.make(name, **overrides) -> (env, params)``.

Overrides name either a field of the env's params dataclass (the task) or a
keyword of the env's constructor (static settings such as maximum grid size).
Anything else is an error naming the bad key and the closest valid ones.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import inspect
from collections.abc import Callable
from typing import Any

import gymnax
import jax.numpy as jnp
import numpy as np

Factory = Callable[..., tuple[Any, Any]]
_REGISTRY: dict[str, Factory] = {}


def register(name: str, factory: Factory, *, overwrite: bool = False) -> None:
    """Register ``factory(**constructor_kwargs) -> (env, params)`` under ``name``."""
    if not overwrite and name in _REGISTRY:
        raise ValueError(f"environment {name!r} is already registered")
    _REGISTRY[name] = factory


def registered() -> list[str]:
    """All registered names, sorted."""
    return sorted(_REGISTRY)


def _close(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=4, cutoff=0.5)
    return f"; did you mean {', '.join(near)}?" if near else ""


def _ctor_kwargs(factory: Factory) -> set[str]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return set()
    return {n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _as_field_value(old: Any, new: Any, name: str) -> Any:
    old_arr = np.asarray(old)
    new_arr = np.asarray(new)
    if old_arr.shape != new_arr.shape:
        raise ValueError(f"override {name}: expected shape {old_arr.shape}, got {new_arr.shape}")
    if np.issubdtype(old_arr.dtype, np.integer) and not np.all(np.round(new_arr) == new_arr):
        raise ValueError(f"override {name}: expected an integer, got {new!r}")
    if isinstance(old, (bool, int, float)) and not isinstance(old, np.ndarray):
        return type(old)(new_arr.item())
    return jnp.asarray(new_arr, dtype=old_arr.dtype)


def make(name: str, **overrides: Any) -> tuple[Any, Any]:
    """Build ``(env, params)``; see module docstring for ``overrides``."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}{_close(name, registered())} (see envs.registered())")
    factory = _REGISTRY[name]
    ctor_names = _ctor_kwargs(factory)
    ctor = {k: v for k, v in overrides.items() if k in ctor_names}
    env, params = factory(**ctor)
    field_names = [f.name for f in dataclasses.fields(params)]
    updates = {}
    for key, value in overrides.items():
        if key in ctor:
            continue
        if key not in field_names:
            valid = sorted(field_names) + sorted(ctor_names)
            raise ValueError(
                f"environment {name!r} has no parameter {key!r}{_close(key, valid)} (valid: {', '.join(valid)})"
            )
        updates[key] = _as_field_value(getattr(params, key), value, key)
    if updates:
        params = params.replace(**updates)
        # keep derived fields consistent (CartPole's total_mass); explicit overrides win
        task_space = getattr(env, "task_space", None)
        if task_space is not None:
            params = task_space.derive(params).replace(**updates)
            if getattr(env, "check_task_overrides", False):
                task_space.check(params)  # outside the declared space: one clear line, before any compute
    return env, params


def _gymnax_factory(gymnax_name: str) -> tuple[Any, Any]:
    from envs.gymnax_adapter import GymnaxEnv

    env = GymnaxEnv(gymnax_name)
    return env, env.default_params


def _register_gymnax() -> None:
    for gname in gymnax.registered_envs:
        register(gname, functools.partial(_gymnax_factory, gname))


_register_gymnax()
