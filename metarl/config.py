"""The one config loader: Hydra configs to plain values, checked section by section.

* :func:`plain` — Hydra ``DictConfig`` (or any mapping) to plain Python containers.
* :func:`build_dataclass` — a frozen dataclass from a config section; unknown
  keys are an error naming the key and its close matches, and every value is
  checked against its field (:func:`check_fields`) before the class sees it.
* :func:`option` / :func:`check_fields` — the one way an option declares what
  it accepts: the field's type (``bool`` takes only true/false, ``int`` only
  whole numbers, every number must be finite) plus a declared range
  (``gt``/``ge``/``lt``/``le``) or ``choices``; errors name ``<Class>.<field>``
  (or ``<CONFIG_SECTION>.<field>`` for a class that always comes from one
  section), which :func:`build_dataclass` turns into ``<section>.<field>``.
* :func:`check_number` / :func:`check_bool` / :func:`check_choice` — the same
  checks for a plain option (``seeds``, ``final_fraction``, ...).
* :func:`check_keys` — the unknown-key check for a section that is a plain mapping.
* :func:`as_int` / :func:`positive_int` — step counts from YAML (``1e6`` is a float there).
* :func:`env_spec` — the ``env`` section (``{name, overrides}``) as ``(name, overrides)``
  for ``envs.make(name, **overrides)``.
* :func:`group_options` / :func:`group_config` — the files of a config group
  (``configs/<group>/*.yaml``), read through the ``configs`` package.
* :func:`user_overrides` / :func:`check_overrides` — the keys the user set on
  the command line of the running Hydra app, and their check against the
  primary config's values (a ``bool`` stays a ``bool``; nothing is NaN or inf).

A leaf: imports nothing of the project.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import math
import numbers
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")
CONFIG_PACKAGE = "configs"
_NOT_GIVEN = dataclasses.MISSING


def plain(cfg: Any) -> Any:
    """Resolve a Hydra/OmegaConf config into dicts and lists (other values unchanged)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    if isinstance(cfg, Mapping):
        return {k: plain(v) for k, v in cfg.items()}
    return cfg


# --- numbers, bools and names ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Bounds:
    """Allowed values of a number: ``gt``/``lt`` exclusive, ``ge``/``le`` inclusive, ``None`` unbounded."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def __contains__(self, value: float) -> bool:
        return ((self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))

    def describe(self) -> str:
        low, high = (self.gt if self.gt is not None else self.ge), (self.lt if self.lt is not None else self.le)
        if high is None:
            if low == 0:
                return "positive" if self.gt is not None else "non-negative"
            return "unbounded" if low is None else f"{'>' if self.gt is not None else '>='} {low}"
        if low is None:
            return f"{'<' if self.lt is not None else '<='} {high}"
        return f"in {'(' if self.gt is not None else '['}{low}, {high}{')' if self.lt is not None else ']'}"


def close_matches(word: str, choices: Iterable[str], or_list: bool = False) -> str:
    """`` (did you mean a, b?)`` for near misses; with ``or_list`` and none near, `` (valid: ...)``."""
    choices = sorted(str(c) for c in choices)
    near = difflib.get_close_matches(str(word), choices, n=3, cutoff=0.5)
    if near:
        return f" (did you mean {', '.join(near)}?)"
    return f" (valid: {', '.join(choices)})" if or_list and choices else ""


def unknown_name(what: str, name: Any, choices: Iterable[str]) -> ValueError:
    """``unknown <what> 'x' (did you mean y?)``, or the valid names when none is near."""
    return ValueError(f"unknown {what} {name!r}{close_matches(str(name), choices, or_list=True)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and type(value).__name__ != "bool_"


def check_finite(value: Any, name: str) -> None:
    """No NaN or inf anywhere in ``value`` (numbers, lists, mappings); the error names where."""
    if _is_number(value):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value}")
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_finite(item, f"{name}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_finite(item, f"{name}[{index}]")


def check_number(value: Any, name: str, *, integer: bool = False, gt: float | None = None, ge: float | None = None,
                 lt: float | None = None, le: float | None = None) -> int | float:
    """``value`` as a finite number (an ``int`` with ``integer``, integral floats such as ``1e6`` accepted) in range."""
    if not _is_number(value):
        raise ValueError(f"{name} must be {'an integer' if integer else 'a number'}, got {value!r}")
    check_finite(value, name)
    if integer:
        if float(value) != int(value):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    bounds = Bounds(gt, ge, lt, le)
    if value not in bounds:
        raise ValueError(f"{name} must be {bounds.describe()}, got {value}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is ``true``/``false`` (``maybe``, ``1`` and ``"yes"`` are errors, never truthy)."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ValueError(f"{name} must be true or false, got {value!r}")


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """``value`` if it is one of ``choices``; else one line with the close matches."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}"
                         f"{close_matches(str(value), map(str, choices))}")
    return value


def as_int(value: Any, name: str) -> int:
    """An integer from a config value; integral floats (``1e6``) and numeric strings are accepted."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value)
    return check_number(value, name, integer=True)


def positive_int(value: Any, name: str) -> int:
    number = as_int(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be a positive integer, got {number}")
    return number


# --- dataclass fields that declare what they accept ---------------------------------------------------
def option(default: Any = _NOT_GIVEN, *, default_factory: Any = _NOT_GIVEN, gt: float | None = None,
           ge: float | None = None, lt: float | None = None, le: float | None = None,
           choices: Iterable[Any] | None = None) -> Any:
    """A dataclass field with its declared range (numbers; each element of a tuple) or ``choices``."""
    metadata = {"bounds": Bounds(gt, ge, lt, le)}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_typed(value: Any, kind: Any, name: str, bounds: Bounds) -> Any:
    """``value`` checked against the annotation ``kind`` (and ``bounds`` for its numbers)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        arms = [a for a in args if a is not type(None)]
        return _check_typed(value, arms[0], name, bounds) if len(arms) == 1 else value
    if kind is bool:
        return check_bool(value, name)
    if kind in (int, float):
        return check_number(value, name, integer=kind is int, gt=bounds.gt, ge=bounds.ge, lt=bounds.lt, le=bounds.le)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{name} must be a list, got {value!r}")
        fixed = not (len(args) == 2 and args[1] is Ellipsis)
        if fixed and len(value) != len(args):
            raise ValueError(f"{name} must be a list of {len(args)} values, got {list(value)!r}")
        item_kinds = args if fixed else [args[0]] * len(value)
        return tuple(_check_typed(v, k, f"{name}[{i}]", bounds) for i, (v, k) in enumerate(zip(value, item_kinds)))
    if kind is dict or origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{name} must be a mapping, got {value!r}")
    check_finite(value, name)
    return value


_SIMPLE_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "dict": dict}


def check_value(value: Any, kind: Any, name: str, *, gt: float | None = None, ge: float | None = None,
                lt: float | None = None, le: float | None = None) -> Any:
    """``value`` checked against a type or a simple annotation string (``"int"``, ``"float | None"``, ...).

    For keyword arguments of a class that declares no config fields (a
    teacher's options): other annotations only require finite numbers.
    """
    if isinstance(kind, str):
        base, _, rest = kind.partition(" | ")
        simple = _SIMPLE_TYPES.get(base.strip())
        kind = Any if simple is None or rest.strip() not in ("", "None") else (simple | None if rest else simple)
    return _check_typed(value, kind, name, Bounds(gt, ge, lt, le))


def check_field(cls: type, field_name: str, value: Any, name: str) -> Any:
    """``value`` checked (and normalised: ``1e6`` -> ``1000000``, list -> tuple) as ``cls.<field_name>`` would be."""
    field = {f.name: f for f in dataclasses.fields(cls)}[field_name]
    value = _check_typed(value, _field_types(cls)[field_name], name, field.metadata.get("bounds", Bounds()))
    if "choices" in field.metadata:
        check_choice(value, name, field.metadata["choices"])
    return value


def error_prefix(cls: type) -> str:
    """What a class's errors call it: its ``CONFIG_SECTION`` (e.g. ``fitness``) if it has one, else its name."""
    return getattr(cls, "CONFIG_SECTION", cls.__name__)


def check_fields(instance: Any) -> None:
    """Check every field of a (frozen) dataclass instance; call it first in ``__post_init__``.

    Errors name ``<Class>.<field>`` (:func:`error_prefix`); normalised values
    (ints from ``1e6``, tuples from lists) are written back.
    """
    cls = type(instance)
    for field in dataclasses.fields(cls):
        value = getattr(instance, field.name)
        checked = check_field(cls, field.name, value, f"{error_prefix(cls)}.{field.name}")
        if checked is not value:
            object.__setattr__(instance, field.name, checked)


def check_keys(section: Any, allowed: Iterable[str], prefix: str) -> dict:
    """``section`` as a dict; a key outside ``allowed`` is an error naming ``<prefix>.<key>``."""
    values = plain(section) or {}
    if not isinstance(values, Mapping):
        raise ValueError(f"{prefix} must be a mapping, got {values!r}")
    allowed = set(allowed)
    for key in values:
        if key not in allowed:
            raise ValueError(f"{prefix}.{key} is not a setting{close_matches(str(key), allowed, or_list=True)}")
    return dict(values)


def build_dataclass(cls: type[T], section: Any, prefix: str) -> T:
    """``cls(**section)`` with one-line errors naming ``<prefix>.<key>``.

    Unknown keys are refused with their close matches, every value is checked
    against its field (:func:`check_field`) and an error the class raises
    about ``<Class>.<field>`` is reported as ``<prefix>.<field>``.
    """
    values = check_keys(section, [f.name for f in dataclasses.fields(cls)], prefix)
    kwargs = {key: check_field(cls, key, value, f"{prefix}.{key}") for key, value in values.items()}
    try:
        return cls(**kwargs)
    except ValueError as error:
        raise ValueError(str(error).replace(f"{error_prefix(cls)}.", f"{prefix}.")) from None


def env_spec(env_cfg: Any) -> tuple[str, dict]:
    """``{name: <registry name>, overrides: {...}}`` -> ``(name, overrides)``."""
    if isinstance(plain(env_cfg), Mapping) and "task_sets" in plain(env_cfg):
        raise ValueError("env.task_sets is for metarl-meta-train's LPO/TA-LPO and learned-optimizer jobs; this job "
                         "samples tasks through its teacher: choose an env file without it (e.g. env=cartpole)")
    values = check_keys(env_cfg, ("name", "overrides"), "env")
    if not values.get("name"):
        raise ValueError("env.name is missing (choose a file under configs/env/ or set env.name=<registry name>)")
    overrides = values.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ValueError(f"env.overrides must be a mapping, got {overrides!r}")
    check_finite(overrides, "env.overrides")
    return values["name"], dict(overrides)


# --- config groups and the command line ----------------------------------------------------------------
def _group_dir(group: str) -> Any:
    from importlib.resources import files

    return files(CONFIG_PACKAGE).joinpath(group)


def group_options(group: str, package: str = CONFIG_PACKAGE) -> list[str]:
    """Names of the files of a config group, nested ones too (``env`` -> ``cartpole``, ``gridworld/dense``, ...)."""
    from importlib.resources import files

    def names(folder: Any, prefix: str) -> list[str]:
        found = []
        for entry in folder.iterdir():
            if entry.is_dir():
                found += names(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".yaml"):
                found.append(prefix + entry.name.removesuffix(".yaml"))
        return found

    folder = files(package).joinpath(group)
    return sorted(names(folder, "")) if folder.is_dir() else []


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


def primary_config(config_name: str, package: str = CONFIG_PACKAGE) -> dict:
    """The values written in ``<package>/<config_name>.yaml`` itself (no defaults list, nothing resolved)."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    node = OmegaConf.create(files(package).joinpath(f"{config_name}.yaml").read_text())
    return OmegaConf.to_container(node, resolve=False)


def _lookup(tree: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(tree, Mapping) or part not in tree:
            return None
        tree = tree[part]
    return tree


def check_overrides(cfg: Any, overrides: Iterable[str], defaults: Mapping) -> None:
    """Each value set on the command line is finite and keeps the kind of its value in ``defaults``.

    A ``bool`` default takes only true/false, an integer one only whole
    numbers, a float one only numbers; other defaults (strings, lists, null)
    take anything (``env.name`` may become a list). The errors name the key.
    """
    from omegaconf import OmegaConf

    for key in override_keys(overrides):
        if key.split(".")[0] == "hydra" or "@" in key:
            continue
        value = plain(OmegaConf.select(cfg, key, default=None))
        check_finite(value, key)
        default = _lookup(defaults, key)
        if isinstance(default, bool):
            check_bool(value, key)
        elif _is_number(default) and value is not None:
            check_number(value, key, integer=isinstance(default, int))
