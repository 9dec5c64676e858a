"""Config helpers shared by the command-line apps.

* :func:`plain` — Hydra ``DictConfig`` (or any mapping) to plain Python containers.
* :func:`build_dataclass` — a frozen dataclass from a config section; unknown
  keys are an error naming the key and its close matches.
* :func:`as_int` / :func:`positive_int` — step counts from YAML (``1e6`` is a float there).
* :func:`make_env` — ``{name, overrides}`` to ``(env, params)`` through the registry.
* :func:`cli_errors` — run a CLI body so that a bad configuration exits non-zero
  with one line on stderr instead of a traceback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def plain(cfg: Any) -> Any:
    """Resolve a Hydra/OmegaConf config into dicts and lists (other values unchanged)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(cfg, (DictConfig, ListConfig)):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    if isinstance(cfg, Mapping):
        return {k: plain(v) for k, v in cfg.items()}
    return cfg


def as_int(value: Any, name: str) -> int:
    """An integer from a config value; integral floats (``1e6``) are accepted."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return as_int(float(value), name)
    raise ValueError(f"{name} must be an integer, got {value!r}")


def positive_int(value: Any, name: str) -> int:
    number = as_int(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer, got {number}")
    return number


def close_matches(word: str, choices: list[str]) -> str:
    near = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(near)}?)" if near else ""


def build_dataclass(cls: type[T], section: Any, prefix: str) -> T:
    """``cls(**section)`` with a one-line error for unknown keys.

    Lists become tuples (frozen dataclasses should stay hashable) and integral
    floats given for ``int`` fields become ints.
    """
    values = plain(section) or {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{prefix} must be a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise ValueError(f"unknown setting {prefix}.{key}{close_matches(key, sorted(fields))}")
    kwargs = {}
    for key, value in values.items():
        if isinstance(value, list):
            value = tuple(value)
        if fields[key].type in ("int", int) and isinstance(value, float):
            value = as_int(value, f"{prefix}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def make_env(env_cfg: Any) -> tuple[Any, Any]:
    """``{name: <registry name>, overrides: {...}}`` -> ``(env, params)``."""
    import envs

    env_cfg = plain(env_cfg) or {}
    if "name" not in env_cfg or not env_cfg["name"]:
        raise ValueError("env.name is missing (choose a file under configs/env/ or set env.name=<registry name>)")
    overrides = env_cfg.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"env.overrides must be a mapping, got {overrides!r}")
    return envs.make(env_cfg["name"], **overrides)


@contextlib.contextmanager
def cli_errors(program: str) -> Iterator[None]:
    """Turn ``ValueError`` into ``<program>: error: <message>`` and exit status 2."""
    try:
        yield
    except ValueError as err:
        message = " ".join(str(err).split())  # one line
        print(f"{program}: error: {message}", file=sys.stderr)
        sys.exit(2)
