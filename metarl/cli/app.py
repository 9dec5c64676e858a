"""The one way a console script runs a job.

:func:`run_app`:

1. applies the XLA CPU defaults (:func:`metarl.runtime.configure_cpu`) before
   anything imports JAX;
2. runs Hydra on the job's primary config, found through the ``configs``
   package (so a script works from any directory);
3. looks the job up in :mod:`metarl.jobs.registry` and refuses a command-line
   override of a top-level section the job does not use (``Job.sections``);
4. reports errors one way: a bad configuration or input (``ValueError`` and
   friends, Hydra/OmegaConf config errors) is ``<program>: error: <one line>``
   on stderr and exit status 2. ``--debug`` or ``HYDRA_FULL_ERROR=1`` shows
   the full traceback instead.

The run directory is ``run_dir`` when the config sets one, else Hydra's
output directory (``hydra.run.dir``). In a sweep (``-m``) it is always the
job's directory below ``hydra.sweep.dir``, a failing job stops only itself,
and the command exits with status 1 if any job failed (:mod:`metarl.cli.sweep`).
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from metarl.cli.argv import hydra_argv, take_verbose
from metarl.cli.errors import check_override_syntax, describe
from metarl.cli.output import configure_logging, help_footer
from metarl.cli.sweep import CALLBACK as SWEEP_CALLBACK
from metarl.cli.sweep import JobOutcome, failed_jobs, take_metric
from metarl.cli.sweep import check_command_line as check_sweep_command_line
from metarl.cli.sweep import reset as reset_sweep
from metarl.distributed import leave_if_joined
from metarl.runtime import configure_cpu, persist_compilation_cache

CONFIG_PACKAGE = "configs"
DEBUG_FLAG = "--debug"
LOGGING_GROUPS = ("hydra/job_logging", "hydra/hydra_logging")


def _user_errors() -> tuple[type[BaseException], ...]:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return ValueError, TypeError, OSError, HydraException, OmegaConfBaseException


def one_line(error: BaseException) -> str:
    """An error message on one line (Hydra's and OmegaConf's span several)."""
    return " ".join(str(error).split())


@contextlib.contextmanager
def reported_errors(program: str, debug: bool, describe: Callable[[BaseException], str] = one_line) -> Iterator[None]:
    """The one error wrapper: user errors become ``<program>: error: <one line>``, exit status 2."""
    try:
        yield
    except _user_errors() as error:
        if debug:
            raise
        print(f"{program}: error: {describe(error)}", file=sys.stderr)
        leave_if_joined(2)  # a multi-process run: not into JAX's exit barrier, which waits for the other processes
        raise SystemExit(2) from None


def check_sections(job: Any, overrides: Sequence[str]) -> None:
    """An override outside ``job.sections`` is an error naming it.

    A section entry is a top-level key (``env``: everything under it is used)
    or a dotted key (``evaluate.enabled``: only that key of ``evaluate`` is).
    """
    from metarl.config import override_keys

    if job.sections is None:
        return
    for override, key in zip(overrides, override_keys(overrides)):
        key = key.split("@")[0]
        top = key.split(".")[0]
        if top in ("hydra", "job", "sweep"):  # job=<name> picks the job itself; sweep.* is the app's (cli/sweep.py)
            continue
        if any(key == s or key.startswith(s + ".") or s.startswith(key + ".") for s in job.sections):
            continue
        used = [s for s in job.sections if s.startswith(top + ".")]
        if used:  # the section is read only in part
            raise ValueError(f"{override}: job {job.name} has no setting {key!r} (of {top} it reads only "
                             f"{', '.join(used)})")
        raise ValueError(f"{override}: job {job.name} has no setting {top!r} (its settings: {', '.join(job.sections)})")


def _run_dir(cfg: Any) -> Path:
    from hydra.core.hydra_config import HydraConfig

    from metarl.cli import sweep

    if sweep.in_sweep():  # -m: each job its own directory below hydra.sweep.dir
        from metarl.config import user_overrides

        return sweep.job_dir(cfg, user_overrides())
    return Path(cfg.get("run_dir") or HydraConfig.get().runtime.output_dir)


@contextlib.contextmanager
def _hydra_argv(program: str, argv: Sequence[str]) -> Iterator[None]:
    """``sys.argv`` for Hydra, and its exceptions raised instead of printed (so they are reported here)."""
    saved_argv, saved_flag = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    # Jobs print what they report; Hydra leaves Python logging alone unless asked (no log file, no INFO noise)
    quiet = [f"{group}=none" for group in LOGGING_GROUPS if not any(a.startswith(group) for a in argv)]
    sys.argv = hydra_argv(program, argv, [f"hydra.job.name={program}", *quiet, SWEEP_CALLBACK])
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        sys.argv = saved_argv
        if saved_flag is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_flag


def run_app(
    program: str,
    config_name: str,
    job: str | Callable[[Any], str],
    *,
    config_package: str = CONFIG_PACKAGE,
    after: Callable[[dict, Path], None] | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Run ``job`` (a job name, or ``job(cfg) -> name``) on the Hydra config ``config_name`` and ``argv``.

    ``after(summary, run_dir)`` prints what the job leaves for the user, if it does not itself.
    """
    configure_cpu()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("HYDRA_FULL_ERROR") == "1"
    argv = [a for a in argv if a != DEBUG_FLAG]
    explain = functools.partial(describe, argv=argv, config_name=config_name, package=config_package)
    with reported_errors(program, debug, explain):
        verbose, argv = take_verbose(argv)
        check_override_syntax(argv)
        check_sweep_command_line(argv)  # -m with run_dir=: every job into one directory

    def task(cfg: Any) -> float | None:
        configure_logging(verbose)  # before the jobs import JAX; after Hydra has set up logging
        from metarl import distributed
        from metarl.cli import processes
        from metarl.config import check_overrides, plain, primary_config, user_overrides
        from metarl.io.run_dir import prepare_run_dir
        from metarl.io.tracking import Tracker, tracked

        outcome = JobOutcome(program, debug, explain, _user_errors())  # in a sweep (-m): result.json or error.txt
        # reported here too: Hydra would print its own line for an error raised out of the task
        with reported_errors(program, debug, explain), outcome.guard():
            metric = take_metric(cfg)  # sweep.metric: what a sweep job reports to the sweeper
            # cpu_devices=, distributed.*: checked, then CPU devices set and the other processes joined (one line if
            # they cannot be reached), before the jobs' imports start JAX's backend (gymnax computes on import)
            parallel = processes.start(cfg)
            from metarl.cli.preflight import check_job
            from metarl.jobs import registry

            chosen = registry.get(job(cfg) if callable(job) else job)
            check_sections(chosen, user_overrides())
            check_overrides(cfg, user_overrides(), primary_config(config_name, config_package))
            run_dir = outcome.run_dir = _run_dir(cfg)
            check_job(chosen.name, cfg, run_dir)  # every setting, name, input file and the run dir: nothing written yet
            if parallel.enabled:  # every process checks the run directory before process 0 writes in it
                prepare_run_dir(run_dir, cfg, write=False)
                processes.barrier(parallel, "run directory checked")
            persist_compilation_cache(run_dir)  # beside the run: a repeat run skips compiling
            if distributed.is_primary():
                prepare_run_dir(run_dir, cfg)  # no new run into old work; a resume must match its config
            else:
                run_dir = distributed.use_scratch_run_dir(run_dir)  # process 0 owns the run directory
            outcome.run_dir, outcome.prepared = run_dir, True  # a sweep job's result.json goes where it ran
            with tracked(Tracker.for_job(chosen.name, plain(cfg), run_dir)) as tracker:  # logger=[tensorboard,...]
                summary = chosen.run(cfg, run_dir)
                tracker.log_job_summary(summary)
            outcome.finished(chosen, summary, metric)
        if outcome.failed:
            return None  # the sweep goes on with its other jobs
        if after is not None:
            after(summary, run_dir)
        return outcome.value

    import hydra

    reset_sweep()
    main = hydra.main(config_path=f"pkg://{config_package}", config_name=config_name, version_base=None)(task)
    # what Hydra raises itself (a config group option it cannot find, a run directory it cannot create)
    with reported_errors(program, debug, functools.partial(explain, setup=True)), _hydra_argv(program, argv), \
            help_footer(argv):
        main()
    if failed_jobs():  # a sweep whose jobs ran, some of them failing (each named above)
        raise SystemExit(1)
