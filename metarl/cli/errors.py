"""Hydra's and the operating system's errors as one clear line.

Hydra reports a bad command line over several lines, with its config search
path and links; :func:`describe` turns the common cases into one line that
names the override and what would be right:

* an unknown group choice (``env=cartpol``): the group's options, near ones first;
* a value override of a key the config lacks (``agent.foo=1``): ``+`` adds a key;
* a group override the program has no group for (``teacher=plr`` in ``metarl-train``);
* bad override syntax (:func:`check_override_syntax`, before Hydra runs);
* an ``OSError`` (an output directory Hydra cannot create): the path and why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from metarl.cli.argv import split_flags
from metarl.config import close_matches, group_options, override_keys, primary_config

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def check_override_syntax(argv: Sequence[str]) -> None:
    """Each override parses on its own (``key=value``); the error names the argument."""
    from hydra.errors import OverrideParseException

    for arg in split_flags(argv)[1]:
        key = arg.lstrip("+~").partition("=")[0]
        if "=" not in arg and not arg.startswith("~"):
            raise ValueError(f"{arg}: not an override; write key=value (see {GRAMMAR})")
        if not key.strip():
            raise ValueError(f"{arg}: an override needs a key before '=' (key=value)")
        try:
            override_keys([arg])
        except OverrideParseException as error:
            reason = one_line(error.message).split(" See https://")[0]  # Hydra's own link, to an old version
            raise ValueError(f"{arg}: not a valid override ({reason}); see {GRAMMAR}") from None


def _override_for(key: str, argv: Sequence[str]) -> str:
    """The user's argument that set ``key`` (``env=cartpol``), else ``key``."""
    for arg in argv:
        if arg.lstrip("+~").partition("=")[0].split("@")[0] == key:
            return arg
    return key


def _missing_option(error: Exception, argv: Sequence[str], package: str) -> str | None:
    """``env=cartpol: no option 'cartpol' in config group env (did you mean cartpole?)``."""
    path = getattr(error, "missing_cfg_file", None)
    if not path or "/" not in path:
        return None
    text = str(error)
    group = re.search(r"Available options in '([^']+)'", text)
    group = group.group(1) if group else path.rsplit("/", 1)[0]
    option = path[len(group) + 1:] if path.startswith(f"{group}/") else path.rsplit("/", 1)[1]
    options = group_options(group, package)
    what = f"no option {option!r} in config group {group}" if option else f"config group {group} needs an option"
    return f"{_override_for(group, argv)}: {what}{close_matches(option, options, or_list=True)}"


def _top_level_names(config_name: str, package: str) -> list[str]:
    try:
        values = primary_config(config_name, package)
    except (OSError, ValueError):
        return []
    groups = [next(iter(d)) for d in values.get("defaults", []) if isinstance(d, dict)]
    return sorted({*values, *groups} - {"defaults", "hydra"})


def _could_not_override(text: str, config_name: str, package: str) -> str | None:
    found = re.search(r"Could not override '([^']+)'", text)
    if not found:
        return None
    key = found.group(1)
    if "To append to your config use" in text:  # a value override of a key the config lacks
        return (f"Could not override '{key}': the config has no setting {key!r} "
                f"(a new key needs a leading +: +{key}=...)")
    if "No match in the defaults list" in text:  # a group this program does not have
        hint = close_matches(key, _top_level_names(config_name, package))
        return f"Could not override '{key}': this program has no config group or setting {key!r}{hint}"
    return None


def describe(error: BaseException, argv: Sequence[str] = (), config_name: str = "", package: str = "configs",
             setup: bool = False) -> str:
    """``error`` as the one line after ``<program>: error:``; ``setup``: raised by Hydra before the job ran."""
    from hydra.errors import MissingConfigException

    if isinstance(error, MissingConfigException):
        line = _missing_option(error, argv, package)
        if line:
            return line
    text = one_line(error)
    line = _could_not_override(text, config_name, package)
    if line:
        return line
    if isinstance(error, OSError) and error.filename and not isinstance(error, MissingConfigException):
        reason = (error.strerror or type(error).__name__).lower()
        # before the job, Hydra only writes: its run directory and the .hydra/ record in it
        return f"cannot create the run directory {error.filename}: {reason}" if setup else f"{error.filename}: {reason}"
    return text.split(" Config search path:")[0]  # Hydra appends where it looked, on every config error
