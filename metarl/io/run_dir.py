"""Run directories that never mix two runs: refuse a new run into old work, check a resume's config.

:func:`prepare_run_dir` runs once per console-script call, before the job
compiles or writes anything:

* a new run (``resume`` false or absent) into a directory that already holds
  work is refused, and nothing in it changes. ``.hydra/`` and ``config.yaml``
  alone are not work: a directory left by a run that failed its config checks
  can be reused, and so can one holding only the ``error.txt`` of a sweep
  job that failed (:mod:`metarl.io.sweep`). (``.hydra/`` is Hydra's record of each invocation; where
  Hydra's output directory is the run directory, as for ``out_dir`` of
  metarl-evaluate, Hydra rewrites it before any check can run);
* otherwise the resolved config is written to ``run_dir/config.yaml``;
* ``resume=true`` compares the current config with ``config.yaml`` and refuses
  differing keys, named as dotted paths. Keys that say how or where to run
  (``resume``, ``run_dir``, ``out_dir``, progress switches, ``verbose``,
  ``checkpoint_every``, ``logger``, ``sweep``: :data:`IGNORED_ON_RESUME`) may differ; ``allow_changes=[meta.generations]``
  accepts the listed keys (or whole sections: ``allow_changes=[evaluate]``), and
  ``config.yaml`` then records the new values;
* ``resume=true`` on a missing or empty directory, or on one without
  ``config.yaml``, is an error: a mistyped ``run_dir`` must not silently start over.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metarl.io.sweep import ERROR_FILE

CONFIG_FILE = "config.yaml"
NOT_WORK = (".hydra", CONFIG_FILE, ERROR_FILE)  # what a directory may hold and still take a new run
# keys that say how or where to run, not what (how often to checkpoint changes no number): they may
# differ between a run and its resume
IGNORED_ON_RESUME = ("resume", "allow_changes", "run_dir", "out_dir", "progress", "progress_bar", "verbose", "hydra",
                     "checkpoint_every", "meta.checkpoint_every", "logger", "sweep",
                     # where the population runs: the result is the same bits on any devices and processes
                     "cpu_devices", "distributed", "meta.devices", "meta.shard")
ALLOW_KEY = "allow_changes"


def _resolved(cfg: Any) -> dict:
    """``cfg`` as plain YAML values, exactly as :data:`CONFIG_FILE` stores and reads them back."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
    return OmegaConf.to_container(OmegaConf.create(OmegaConf.to_yaml(OmegaConf.create(container))))


def _write(path: Path, config: dict) -> None:
    from omegaconf import OmegaConf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    os.replace(tmp, path)  # a kill never leaves half a config


def _read(path: Path) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path))


def work_in(run_dir: Path) -> list[str]:
    """Names of the entries of ``run_dir`` that are a run's work (empty when missing)."""
    if not run_dir.exists():
        return []
    if not run_dir.is_dir():
        raise ValueError(f"run directory {run_dir} is a file")
    return sorted(p.name for p in run_dir.iterdir() if p.name not in NOT_WORK)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):  # True == 1 in Python, not in a config
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b  # 1 == 1.0: an int written as a float is the same setting


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two plain configs differ (a list counts as one value)."""
    if isinstance(saved, Mapping) and isinstance(current, Mapping):
        paths = []
        for key in sorted(set(saved) | set(current), key=str):
            path = f"{prefix}{key}"
            if key not in saved or key not in current:
                paths.append(path)
            else:
                paths.extend(config_differences(saved[key], current[key], f"{path}."))
        return paths
    return [] if _same(saved, current) else [prefix.rstrip(".")]


def _covered(path: str, keys: list[str]) -> bool:
    return any(path == key or path.startswith(f"{key}.") for key in keys)


def _allowed_changes(config: dict) -> list[str]:
    allowed = config.get(ALLOW_KEY) or []
    if isinstance(allowed, str):
        allowed = [allowed]
    if not isinstance(allowed, list) or not all(isinstance(k, str) and k for k in allowed):
        raise ValueError(f"{ALLOW_KEY} must be a list of dotted config keys, e.g. {ALLOW_KEY}=[meta.generations]; "
                         f"got {allowed!r}")
    return allowed


def check_resume(run_dir: Path, config: dict) -> list[str]:
    """The accepted (allowed) differences between ``config`` and the run's saved config; refuses the rest."""
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        if work_in(run_dir):
            raise ValueError(f"resume=true: run directory {run_dir} has no {CONFIG_FILE}, so it cannot be checked "
                             "to be the same run; start a new run in another run_dir")
        found = "does not exist" if not run_dir.exists() else "holds no run"
        raise ValueError(f"resume=true: run directory {run_dir} {found}; nothing to resume "
                         "(drop resume=true to start a new run)")
    differing = [p for p in config_differences(_read(path), config) if not _covered(p, list(IGNORED_ON_RESUME))]
    allowed = _allowed_changes(config)
    refused = [p for p in differing if not _covered(p, allowed)]
    if refused:
        raise ValueError(
            f"resume=true: the config differs from the one {run_dir} was started with at {', '.join(refused)}; "
            f"resume with the same settings, or accept the change with {ALLOW_KEY}=[{','.join(refused)}]"
        )
    return differing


def prepare_run_dir(run_dir: str | os.PathLike, cfg: Any, write: bool = True) -> Path:
    """Refuse to mix runs in ``run_dir``, then record the config there (see module docstring).

    ``write=False`` only checks (the other processes of a multi-process run, before process 0 writes).
    """
    run_dir = Path(run_dir)
    config = _resolved(cfg)
    if config.get("resume"):
        if check_resume(run_dir, config) and write:
            _write(run_dir / CONFIG_FILE, config)  # the run now continues with the accepted changes
        return run_dir
    work = work_in(run_dir)
    if work:
        shown = ", ".join(work[:3]) + (", ..." if len(work) > 3 else "")
        raise ValueError(f"run directory {run_dir} already holds a run ({shown}); pass resume=true to continue it "
                         "or another run_dir for a new run")
    if write:
        _write(run_dir / CONFIG_FILE, config)
    return run_dir
