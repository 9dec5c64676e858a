"""What a console script does differently when Hydra runs it as a sweep (``-m``).

Any launcher (the basic one, ``hydra/launcher=ray``, ``submitit_local``,
``submitit_slurm``) and any sweeper (the basic grid, ``hydra/sweeper=optuna``)
calls the app's task once per job, in this process or in a worker. In a sweep:

* each job's run directory is Hydra's job directory
  (``hydra.sweep.dir/hydra.sweep.subdir``); ``run_dir=``/``out_dir=`` on the
  command line would put every job into one directory, so they are refused;
* a job that fails does not stop the others: its one error line goes to
  stderr and to ``error.txt`` in its directory, and the task returns
  normally (``None``), so no launcher or sweeper re-raises it (a
  ``SystemExit`` would end the whole sweep; Ray would retry the task);
* a job that finishes writes ``result.json`` (:mod:`metarl.io.sweep`) and
  returns its number, the summary key ``sweep.metric`` names (null: the job's
  headline, ``Job.headline``), which is what Optuna optimizes;
* when the sweep ends, :class:`SweepEnd` (a Hydra callback, in the launching
  process) names the failed jobs, points at ``metarl-sweep-report`` and the
  command exits with status 1 if any job failed.

``--debug`` lets a job's error end the sweep with its traceback instead.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

SECTION = "sweep"  # the config section the app takes for itself: `sweep.metric`
DIR_KEYS = ("run_dir", "out_dir")  # where a single run writes; a sweep's jobs write Hydra's job directories
CALLBACK = f"+hydra.callbacks.metarl_sweep_end._target_={__name__}.SweepEnd"
OPTUNA_SWEEPER_LOGGER = "hydra_plugins.hydra_optuna_sweeper._impl"
FAILED_JOB_RETURN = "Got 'None'"  # how the Optuna sweeper words a failed job's return value
CLOCK_SLACK_S = 60.0  # a shared file system's clock may lag this machine's: jobs started since (start - slack)

_sweep_end = {"started": None, "failed": 0}  # filled by SweepEnd in the launching process, read by the app


def in_sweep() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def take_metric(cfg: Any) -> str | None:
    """``sweep.metric`` (``None``: the job's headline), taken out of ``cfg``: it is no setting of any job."""
    from omegaconf import open_dict

    from metarl.config import plain

    if SECTION not in cfg:
        return None
    with open_dict(cfg):
        section = plain(cfg.pop(SECTION)) or {}
    if not isinstance(section, dict):
        raise ValueError(f"sweep must be a section with a metric key (sweep.metric=<summary key>), got {section!r}")
    if set(section) - {"metric"}:
        raise ValueError(f"sweep.{sorted(set(section) - {'metric'})[0]} is not a setting (sweep has only metric)")
    metric = section.get("metric")
    if metric is not None and (not isinstance(metric, str) or not metric.strip()):
        raise ValueError(f"sweep.metric must be a dotted key of the job's summary, e.g. final_return.mean; got "
                         f"{metric!r}")
    return metric


def _refuse_dir_overrides(overrides: Sequence[str]) -> None:
    from metarl.config import override_keys

    for override, key in zip(overrides, override_keys(overrides)):
        if key.lstrip("+~") in DIR_KEYS:
            raise ValueError(f"{override}: in a sweep (-m) each job writes its own directory "
                             "(hydra.sweep.dir/hydra.sweep.subdir); set hydra.sweep.dir= instead")


def check_command_line(argv: Sequence[str]) -> None:
    """A sweep's command line names no single run directory: refused before any job starts."""
    from metarl.cli.argv import split_flags

    flags, overrides = split_flags(argv)
    if {"-m", "--multirun"} & set(flags) or any(o.replace(" ", "") == "hydra.mode=MULTIRUN" for o in overrides):
        _refuse_dir_overrides(overrides)


def job_dir(cfg: Any, overrides: Sequence[str]) -> Path:
    """This job's directory below ``hydra.sweep.dir``, also written into ``cfg``'s ``run_dir``/``out_dir``."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    _refuse_dir_overrides(overrides)  # hydra.mode=MULTIRUN may come from a config file, past the command-line check
    path = Path(HydraConfig.get().runtime.output_dir)
    with open_dict(cfg):
        for key in DIR_KEYS:
            if key in cfg:
                cfg[key] = str(path)  # config.yaml then says where the job ran
    return path


class JobOutcome:
    """In a sweep, the end of one job: ``result.json`` and its number, or ``error.txt``; outside one, nothing."""

    def __init__(self, program: str, debug: bool, describe: Callable[[BaseException], str],
                 user_errors: tuple[type[BaseException], ...]) -> None:
        self.program, self.debug, self.describe, self.user_errors = program, debug, describe, user_errors
        self.sweeping = in_sweep()
        self.run_dir: Path | None = None
        self.prepared = False  # the run directory is this job's (prepare_run_dir accepted it)
        self.failed = False
        self.value: float | None = None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """In a sweep, a job's exception becomes its error line (stderr and ``error.txt``) and stops only this job."""
        if not self.sweeping:
            yield
            return
        try:
            yield
        except Exception as error:  # noqa: BLE001 (any failure is this job's, never the sweep's)
            if self.debug:
                raise
            self.failed = True
            self._record(error)

    def _record(self, error: Exception) -> None:
        from hydra.core.hydra_config import HydraConfig

        from metarl.io.run_dir import work_in
        from metarl.io.sweep import write_error

        expected = isinstance(error, self.user_errors)
        line = self.describe(error) if expected else f"{type(error).__name__}: {' '.join(str(error).split())}"
        print(f"{self.program}: error: {line}", file=sys.stderr)
        if not expected:  # a bug rather than bad input: the job's log keeps the whole traceback
            traceback.print_exc()
        run_dir = self.run_dir or Path(HydraConfig.get().runtime.output_dir)
        with contextlib.suppress(OSError, ValueError):  # an unwritable directory was the error itself
            if self.prepared or not work_in(run_dir):  # never write into another run's directory
                write_error(run_dir, line)

    def finished(self, job: Any, summary: dict, metric: str | None) -> None:
        """Record a finished job's summary and the number it reports (``None`` if not a finite number)."""
        if not self.sweeping:
            return
        from metarl.io.sweep import clear_error, metric_value, write_result

        key = metric or job.headline
        value = None
        if key is not None:
            try:
                value = metric_value(summary, key)
            except ValueError as error:  # reported, but the job's work stays recorded (the report may use any key)
                print(f"{self.program}: warning: sweep.metric: {error}", file=sys.stderr)
        write_result(self.run_dir, job.name, key, value, summary)
        clear_error(self.run_dir)  # an earlier attempt's error, if this directory had one
        self.value = value


def _not_about_failed_jobs(record: logging.LogRecord) -> bool:
    return FAILED_JOB_RETURN not in record.getMessage()


class SweepEnd(Callback):
    """Hydra callback in the launching process: after the last job, name the failed ones and the report command."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        _sweep_end.update(started=time.time(), failed=0)
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")):
            import optuna  # its import sets its own log level: quiet it after

            optuna.logging.set_verbosity(logging.WARNING)  # INFO off, as every library's
            # the sweeper's warning about a failed job's None: this callback names the job with its error line
            logging.getLogger(OPTUNA_SWEEPER_LOGGER).addFilter(_not_about_failed_jobs)

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        from metarl.io.sweep import describe_overrides, find_jobs, varying_keys

        sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
        program = str(config.hydra.job.name)
        started = _sweep_end["started"]
        jobs = find_jobs(sweep_dir, since=None if started is None else started - CLOCK_SLACK_S) \
            if sweep_dir.is_dir() else []
        failed = [job for job in jobs if job.status != "finished"]
        keys = varying_keys(jobs)
        for job in failed:
            why = job.error or "no result.json or error.txt (killed, or still running)"
            print(f"{program}: job {job.num} ({describe_overrides(job, keys) or 'the only job'}) failed: {why}",
                  file=sys.stderr)
        best = _optuna_best(sweep_dir)
        print(f"sweep of {len(jobs)} job{'s' if len(jobs) != 1 else ''}: {len(jobs) - len(failed)} finished, "
              f"{len(failed)} failed{best}; metarl-sweep-report {sweep_dir} gathers them")
        _sweep_end["failed"] = len(failed)


def _optuna_best(sweep_dir: Path) -> str:
    """``; best: agent.lr=0.002 (22.7)`` from Optuna's optimization_results.yaml, if this was an Optuna sweep."""
    from omegaconf import OmegaConf

    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return ""
    results = OmegaConf.to_container(OmegaConf.load(path))
    if "best_params" not in results:
        return ""  # several objectives: a Pareto front, in the file
    params = " ".join(f"{key}={value}" for key, value in results["best_params"].items())
    return f"; best: {params} ({results.get('best_value')})"


def reset() -> None:
    """Forget an earlier sweep of this process (``main(argv)`` called more than once, as tests do)."""
    _sweep_end.update(started=None, failed=0)


def failed_jobs() -> int:
    """How many jobs of the sweep this process launched failed (0 outside a sweep)."""
    return int(_sweep_end["failed"])
