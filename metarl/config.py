"""The one config loader: Hydra configs to plain values, checked section by section.

* :func:`plain` — Hydra ``DictConfig`` (or any mapping) to plain Python containers.
* :func:`build_dataclass` — a frozen dataclass from a config section; unknown
  keys are an error naming the key and its close matches.
* :func:`check_keys` — the same check for a section that is a plain mapping.
* :func:`as_int` / :func:`positive_int` — step counts from YAML (``1e6`` is a float there).
* :func:`env_spec` — the ``env`` section (``{name, overrides}``) as ``(name, overrides)``
  for ``envs.make(name, **overrides)``.
* :func:`group_options` / :func:`group_config` — the files of a config group
  (``configs/<group>/*.yaml``), read through the ``configs`` package.
* :func:`user_overrides` — the keys the user set on the command line of the
  running Hydra app.

A leaf: imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
CONFIG_PACKAGE = "configs"


def plain(cfg: Any) -> Any:
    """Resolve a Hydra/OmegaConf config into dicts and lists (other values unchanged)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
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


def close_matches(word: str, choices: Iterable[str], or_list: bool = False) -> str:
    """`` (did you mean a, b?)`` for near misses; with ``or_list`` and none near, `` (valid: ...)``."""
    choices = sorted(choices)
    near = difflib.get_close_matches(word, choices, n=3, cutoff=0.5)
    if near:
        return f" (did you mean {', '.join(near)}?)"
    return f" (valid: {', '.join(choices)})" if or_list and choices else ""


def check_keys(section: Any, allowed: Iterable[str], prefix: str) -> dict:
    """``section`` as a dict; a key outside ``allowed`` is an error naming ``<prefix>.<key>``."""
    values = plain(section) or {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{prefix} must be a mapping, got {type(values).__name__}")
    allowed = set(allowed)
    for key in values:
        if key not in allowed:
            raise ValueError(f"{prefix}.{key} is not a setting{close_matches(str(key), allowed, or_list=True)}")
    return dict(values)


def build_dataclass(cls: type[T], section: Any, prefix: str) -> T:
    """``cls(**section)`` with a one-line error for unknown keys.

    Lists become tuples (frozen dataclasses should stay hashable) and integral
    floats given for ``int`` fields become ints.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = check_keys(section, fields, prefix)
    kwargs = {}
    for key, value in values.items():
        if isinstance(value, list):
            value = tuple(value)
        if fields[key].type in ("int", int) and isinstance(value, float):
            value = as_int(value, f"{prefix}.{key}")
        kwargs[key] = value
    return cls(**kwargs)


def env_spec(env_cfg: Any) -> tuple[str, dict]:
    """``{name: <registry name>, overrides: {...}}`` -> ``(name, overrides)``."""
    values = check_keys(env_cfg, ("name", "overrides"), "env")
    if not values.get("name"):
        raise ValueError("env.name is missing (choose a file under configs/env/ or set env.name=<registry name>)")
    overrides = values.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"env.overrides must be a mapping, got {overrides!r}")
    return values["name"], dict(overrides)


def _group_dir(group: str) -> Any:
    from importlib.resources import files

    return files(CONFIG_PACKAGE).joinpath(group)


def group_options(group: str) -> list[str]:
    """Names of the files of a config group (``configs/<group>/<name>.yaml``)."""
    folder = _group_dir(group)
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def group_config(group: str, option: str, context: Mapping | None = None) -> dict:
    """``configs/<group>/<option>.yaml`` as a dict; interpolations resolve against ``context``.

    ``context`` stands in for the rest of a composed config (e.g.
    ``{"agent": {"lr": 3e-2}}`` for ``${agent.lr}``).
    """
    from omegaconf import OmegaConf

    if option not in group_options(group):
        raise ValueError(f"no option {option!r} in config group {group!r}{close_matches(option, group_options(group))}")
    node = OmegaConf.create(_group_dir(group).joinpath(f"{option}.yaml").read_text())
    root = OmegaConf.create({**(plain(context) or {}), group: node})
    return OmegaConf.to_container(root, resolve=True)[group]


def override_keys(overrides: Iterable[str]) -> list[str]:
    """Config keys of Hydra override strings (``+agent.lr=1`` -> ``agent.lr``; ``env=maze`` -> ``env``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides=list(overrides))
    return [o.key_or_group for o in parsed]


def user_overrides() -> list[str]:
    """The override strings of the running Hydra app (``[]`` outside one), e.g. ``["agent.lr=1e-3"]``."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)
