"""Jobs by name: what each job runs, which config it reads and which artifacts it writes and reads.

A job is ``run(cfg, run_dir) -> summary dict`` for a resolved Hydra config.
Job modules register themselves on import. :func:`get` imports only the
module of the job asked for (:data:`MODULES`), so a console script loads
its own job's code and not every job's (the others cost about 0.5 s of each
CLI start on the CPU class: train alone 3.2 s, all jobs 3.7 s);
:func:`registered` and :func:`job_reading` import them all. The CLI layer
looks a job up by name and ``metarl-evaluate`` picks its evaluator from an
artifact's recorded kind (:func:`job_reading`).

Artifact kinds (the ``kind`` field of a :mod:`metarl.io.artifacts` header):

* ``objective`` — a learned drift function (LPO / TA-LPO) and its meta-parameters;
* ``lpg_rule`` — a Learned Policy Gradient update rule;
* ``learned_optimizer`` — an OPEN-style learned optimizer;
* ``policy_checkpoint`` — trained agent parameters (orbax).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

ARTIFACT_KINDS = ("objective", "lpg_rule", "learned_optimizer", "policy_checkpoint")
# top-level settings the app reads for every job (metarl.io.tracking's logger list): part of every job's sections
APP_SECTIONS = ("logger",)

RunFn = Callable[[Any, Path], dict]


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    run: RunFn
    config_name: str  # the primary Hydra config (configs/<config_name>.yaml)
    description: str = ""
    writes: tuple[str, ...] = ()  # artifact kinds it produces
    reads: tuple[str, ...] = ()  # artifact kinds it consumes
    sections: tuple[str, ...] | None = None  # top-level config keys it uses; None: all
    headline: str | None = None  # dotted summary key of its headline number: what a sweep job reports (cli/sweep.py)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.writes + self.reads) - set(ARTIFACT_KINDS))
        if unknown:
            raise ValueError(f"job {self.name!r}: unknown artifact kind {unknown[0]!r} (known: {ARTIFACT_KINDS})")
        if self.sections is not None:
            missing = tuple(s for s in APP_SECTIONS if s not in self.sections)
            object.__setattr__(self, "sections", self.sections + missing)  # frozen: set once, here


_JOBS: dict[str, Job] = {}
# job name -> the module of metarl.jobs that registers it (tests/test_cli_apps.py checks the two agree)
MODULES = {
    "train": "train", "meta_train": "meta_train", "meta_train_lpg": "meta_train_lpg",
    "meta_train_lpg_mg": "meta_train_lpg_mg", "meta_train_optimizer": "meta_train_optimizer",
    "evaluate_objective": "evaluate", "evaluate_optimizer": "evaluate", "evaluate_lpg": "evaluate",
    "curriculum": "curriculum", "continual": "continual", "reset_free": "reset_free", "meta_rl": "meta_rl",
}


def load(name: str) -> None:
    """Import the module that registers job ``name`` (nothing for an unknown name)."""
    if name not in _JOBS and name in MODULES:
        importlib.import_module(f"metarl.jobs.{MODULES[name]}")


def load_all() -> None:
    for module in dict.fromkeys(MODULES.values()):
        importlib.import_module(f"metarl.jobs.{module}")


def register(job: Job) -> Job:
    if job.name in _JOBS and _JOBS[job.name] != job:
        raise ValueError(f"a job named {job.name!r} is already registered")
    _JOBS[job.name] = job
    return job


def get(name: str) -> Job:
    load(name)
    if name not in _JOBS:
        load_all()
        near = difflib.get_close_matches(name, sorted(_JOBS), n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ValueError(f"unknown job {name!r}{hint}; jobs: {', '.join(sorted(_JOBS))}")
    return _JOBS[name]


def registered() -> list[str]:
    load_all()
    return sorted(_JOBS)


def job_reading(kind: str) -> Job:
    """The job that consumes artifacts of ``kind`` (the evaluator for it)."""
    load_all()
    readers = [job for job in _JOBS.values() if kind in job.reads]
    if not readers:
        raise ValueError(f"no job reads artifacts of kind {kind!r} (kinds: {', '.join(ARTIFACT_KINDS)})")
    return readers[0]
