"""The files a sweep's jobs leave behind, and reading them back.

A sweep (a console script run with ``-m``, any Hydra launcher or sweeper)
writes one directory per job below ``hydra.sweep.dir``; Hydra records the
job's overrides in ``<job dir>/.hydra/overrides.yaml`` and its number in
``.hydra/hydra.yaml``. The app adds one of two files when the job ends:

* ``result.json`` — ``{"job", "metric", "value", "summary"}``: the job's name,
  the summary key it reports to the sweeper (``sweep.metric``, else the
  job's headline), that key's value (``null`` when it is not a finite
  number) and the whole summary the job returned;
* ``error.txt`` — the one line the job failed with.

A job directory with neither is a job that is still running or was killed.
:func:`find_jobs` reads a sweep directory into :class:`SweepJob` records;
:func:`check_sweep_dir` refuses a path that is not a sweep directory.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
SWEEP_FILES = ("multirun.yaml", "optimization_results.yaml")  # the basic sweeper's record, Optuna's result
HYDRA_DIR = ".hydra"
ARRAY_LIMIT = 32  # bigger arrays in a summary (ES means, parameters) are recorded by shape only


def _plain(value: Any) -> Any:
    """``value`` as JSON: NumPy/JAX scalars as numbers, small arrays as lists, non-finite floats as null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "tolist"):  # numpy or jax array
        if len(value.shape) == 0:
            return _plain(value.item())
        size = math.prod(value.shape)
        return _plain(value.tolist()) if size <= ARRAY_LIMIT else {"array_shape": list(value.shape)}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def numbers(summary: Any, prefix: str = "") -> dict[str, float]:
    """The numbers of a (nested) summary by dotted key: ``{"final_return.mean": 26.5, ...}``."""
    found: dict[str, float] = {}
    if isinstance(summary, Mapping):
        for key, value in summary.items():
            found.update(numbers(value, f"{prefix}{key}."))
    elif isinstance(summary, (int, float)) and not isinstance(summary, bool):
        found[prefix.rstrip(".")] = float(summary)
    return found


def lookup(summary: Any, key: str) -> Any:
    """The value at dotted ``key`` of a nested summary (``KeyError`` naming the key when absent)."""
    value = summary
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(key)
        value = value[part]
    return value


def metric_value(summary: Any, key: str) -> float | None:
    """The number at ``key``, ``None`` when it is null or not finite; a ``ValueError`` when there is none."""
    plain = _plain(summary)
    try:
        value = lookup(plain, key)
    except KeyError:
        keys = ", ".join(sorted(numbers(plain))) or "none"
        raise ValueError(f"the job's summary has no number at {key!r} (its numbers: {keys})") from None
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"the job's summary has {value!r} at {key!r}, not a number")
    return float(value) if math.isfinite(value) else None


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reader never sees half a file


def write_result(job_dir: str | os.PathLike, job: str, metric: str | None, value: float | None,
                 summary: Any) -> Path:
    path = Path(job_dir) / RESULT_FILE
    record = {"job": job, "metric": metric, "value": value, "summary": _plain(summary)}
    _write(path, json.dumps(record, indent=1) + "\n")
    return path


def write_error(job_dir: str | os.PathLike, line: str) -> Path:
    path = Path(job_dir) / ERROR_FILE
    _write(path, " ".join(line.split()) + "\n")
    return path


def clear_error(job_dir: str | os.PathLike) -> None:
    """Drop the error a previous attempt left in ``job_dir`` (a rerun of a sweep into the same directory)."""
    (Path(job_dir) / ERROR_FILE).unlink(missing_ok=True)


@dataclasses.dataclass(frozen=True)
class SweepJob:
    """One job of a sweep as its directory records it."""

    num: int  # Hydra's job number (hydra.job.num)
    path: Path
    overrides: tuple[str, ...]  # the job's command-line overrides (.hydra/overrides.yaml)
    result: dict | None  # result.json
    error: str | None  # error.txt

    @property
    def status(self) -> str:
        if self.result is not None:
            return "finished"
        return "failed" if self.error is not None else "no result"


def override_items(overrides: Sequence[str]) -> dict[str, str]:
    """``["+agent.lr=0.1", "seed=0"]`` -> ``{"agent.lr": "0.1", "seed": "0"}`` (a deletion ``~key`` has value ``~``)."""
    items = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        items[key.lstrip("+~")] = value if sep else "~"
    return items


def varying_keys(jobs: Sequence[SweepJob]) -> list[str]:
    """The override keys whose value is not the same in every job, in the order the first job lists them."""
    items = [override_items(job.overrides) for job in jobs]
    keys = list(dict.fromkeys(key for each in items for key in each))
    return [key for key in keys if len({each.get(key) for each in items}) > 1]


def describe_overrides(job: SweepJob, keys: Sequence[str]) -> str:
    """The job's overrides of ``keys`` as ``key=value`` words (what tells it apart from the other jobs)."""
    items = override_items(job.overrides)
    return " ".join(f"{key}={items[key]}" for key in keys if key in items)


def _hydra_record(job_dir: Path) -> Any:
    from omegaconf import OmegaConf

    path = job_dir / HYDRA_DIR / "hydra.yaml"
    return OmegaConf.load(path) if path.is_file() else None


def _job_num(record: Any) -> int | None:
    from omegaconf import OmegaConf

    num = None if record is None else OmegaConf.select(record, "hydra.job.num", default=None,
                                                          throw_on_resolution_failure=False)
    return num if isinstance(num, int) else None


def _is_sweep_job(job_dir: Path) -> bool:
    """Hydra ran ``job_dir`` as a job of a sweep (its record says ``mode: MULTIRUN``), not as a single run."""
    from omegaconf import OmegaConf

    record = _hydra_record(job_dir)
    mode = None if record is None else OmegaConf.select(record, "hydra.mode", default=None,
                                                        throw_on_resolution_failure=False)
    return str(mode) == "MULTIRUN"


def read_job(job_dir: Path, fallback_num: int = -1) -> SweepJob:
    from omegaconf import OmegaConf

    overrides = OmegaConf.to_container(OmegaConf.load(job_dir / HYDRA_DIR / "overrides.yaml"))
    result_path, error_path = job_dir / RESULT_FILE, job_dir / ERROR_FILE
    result = json.loads(result_path.read_text()) if result_path.is_file() else None
    error = error_path.read_text().strip() if error_path.is_file() and result is None else None
    num = _job_num(_hydra_record(job_dir))
    return SweepJob(fallback_num if num is None else num, job_dir, tuple(str(o) for o in overrides or ()), result,
                    error)


def _has_job(path: Path) -> bool:
    return (path / HYDRA_DIR / "overrides.yaml").is_file()


def is_sweep_dir(path: Path) -> bool:
    """A sweep's record is there (the basic sweeper's ``multirun.yaml``, Optuna's results), or a job of one is."""
    if any((path / name).is_file() for name in SWEEP_FILES):
        return True
    return path.is_dir() and any(_has_job(child) and _is_sweep_job(child) for child in path.iterdir()
                                 if child.is_dir())


def job_dirs(sweep_dir: str | os.PathLike, max_depth: int = 4) -> list[Path]:
    """The job directories of a sweep directory: those with ``.hydra/overrides.yaml``, at most ``max_depth`` below.

    Deeper than one level only where ``hydra.sweep.subdir`` has a ``/`` (e.g. ``${hydra.job.override_dirname}``
    with ``env=gridworld/dense``); a job's own outputs and hidden folders (``.submitit``) are not searched.
    """
    root = Path(sweep_dir)
    found = []
    for here, dirs, _ in os.walk(root):
        here = Path(here)
        if here != root and _has_job(here):
            found.append(here)
            dirs[:] = []
            continue
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and depth < max_depth)
    return found


def find_jobs(sweep_dir: str | os.PathLike, since: float | None = None) -> list[SweepJob]:
    """The jobs of ``sweep_dir`` by job number (with ``since``: only those Hydra started after that time)."""
    dirs = job_dirs(sweep_dir)
    if since is not None:
        dirs = [d for d in dirs if (d / HYDRA_DIR / "overrides.yaml").stat().st_mtime >= since]
    jobs = [read_job(d, i) for i, d in enumerate(dirs)]
    return sorted(jobs, key=lambda job: (job.num, str(job.path)))


def check_sweep_dir(path: str | os.PathLike) -> Path:
    """``path`` as a sweep directory, or a ``ValueError`` saying what it is instead."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if not path.is_dir():
        raise ValueError(f"{path} is a file, not a multirun directory")
    if not is_sweep_dir(path) and _has_job(path) and _is_sweep_job(path):
        raise ValueError(f"{path} is one job of a sweep; pass the sweep's directory ({path.absolute().parent})")
    if not is_sweep_dir(path):
        what = "the directory of a single run" if _has_job(path) else "not a multirun directory"
        raise ValueError(f"{path} is {what} (no multirun.yaml, no job of a sweep in it); pass the hydra.sweep.dir "
                         "of a run with -m, e.g. multirun/<date>/<time>")
    if not job_dirs(path):
        raise ValueError(f"{path} holds no jobs yet (no <job>/{HYDRA_DIR}/overrides.yaml)")
    return path
