"""The command line a console script hands to Hydra.

Two things happen before Hydra sees the arguments:

* ``verbose=<bool>`` is taken out: it is not a setting of any job but a switch
  of the script itself (third-party INFO logs on or off, :mod:`metarl.cli.output`).
* the arguments are put in the order Hydra's parser can read: its flags
  first, then every override. Python's argparse reads positional overrides
  in one block only, so ``--cfg job env=maze`` failed once the app had added
  overrides of its own in front.
"""

from __future__ import annotations

from collections.abc import Sequence

VERBOSE = "verbose"
TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")
# Hydra 1.3's flags that take a value (hydra._internal.utils.get_args_parser); the rest are switches.
FLAGS_WITH_VALUE = frozenset({"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                              "--config-dir", "-cd", "--experimental-rerun"})
# --info takes an optional value, one of these
INFO_FLAGS = frozenset({"--info", "-i"})
INFO_CHOICES = frozenset({"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"})


def take_verbose(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """``(verbose, argv without it)``; ``verbose=`` (also ``+verbose=``) takes true/false, yes/no, on/off, 1/0."""
    verbose, rest = False, []
    for arg in argv:
        key, sep, value = arg.lstrip("+").partition("=")
        if key != VERBOSE or not sep:
            rest.append(arg)
            continue
        word = value.strip().lower()
        if word not in TRUE_WORDS + FALSE_WORDS:
            raise ValueError(f"{arg}: verbose must be true or false")
        verbose = word in TRUE_WORDS
    return verbose, rest


def split_flags(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(Hydra flags with their values, overrides)``, each in the order given."""
    flags, overrides = [], []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        flags.append(arg)
        takes_value = arg in FLAGS_WITH_VALUE or (arg in INFO_FLAGS and args and args[0] in INFO_CHOICES)
        if takes_value and args:
            flags.append(args.pop(0))
    return flags, overrides


def hydra_argv(program: str, argv: Sequence[str], own_overrides: Sequence[str]) -> list[str]:
    """``sys.argv`` for Hydra: the user's flags, then the app's overrides, then the user's (which win)."""
    flags, overrides = split_flags(argv)
    return [program, *flags, *own_overrides, *overrides]
