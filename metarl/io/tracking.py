"""Experiment tracking: a job's scalar records, also sent to the loggers the config's ``logger`` list names.

Loggers (``logger=[csv,tensorboard,wandb]``):

* ``csv`` — the run's own files (``metrics.jsonl``, ``meta_log.jsonl``, ...).
  The jobs write them whatever the list says: resume and the reports read
  them, so this logger adds nothing and cannot be switched off.
* ``tensorboard`` — tensorboardX event files in ``<run_dir>/tensorboard/``:
  every scalar as ``<section>/<name>`` at its step, the resolved config as
  text (tag ``config``) and as hparams (flattened ``a.b.c`` keys).
* ``wandb`` — a Weights & Biases run in offline mode under ``<run_dir>/wandb/``
  (``wandb sync`` uploads it later), with the resolved config attached.

The console-script app opens one :class:`Tracker` per job (:func:`tracked`)
and logs what the job returns as its summary. Code that holds a step's
scalars on the host calls the module functions (:func:`log`, :func:`log_rows`,
:func:`log_table`, :func:`log_summary`, :func:`restart_at`); they go to the
open tracker and do nothing without one (library use, tests), so no writer
needs a tracker threaded through to it. Values computed inside compiled code
are logged when the host gets them (per chunk, or at the end of the run).

Several seeds: :func:`log_rows` logs the mean over seeds per step (NaN and
null left out); the per-seed values stay in the run's own files. Final
numbers (:func:`log_summary`, :func:`log_table`) go to TensorBoard at the last
step and to the W&B run's summary.

Resume: a resumed run redoes the steps after its checkpoint, and the code that
cuts its log back says where (:func:`restart_at`). A resumed session's
TensorBoard writer opens a new event file with that step as ``purge_step``,
so TensorBoard hides the killed session's events from there on and shows
every step once. W&B gets one offline run per session, grouped by the run
directory's name; a resumed session's run (``<name>-resumed-at-<step>``)
starts at the restart step, so no W&B run holds a step twice.

A leaf: imports nothing of the project; tensorboardX and wandb only when asked for.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import math
import numbers
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

LOGGERS = ("csv", "tensorboard", "wandb")
PACKAGES = {"tensorboard": "tensorboardX", "wandb": "wandb"}  # logger -> the package it needs
TENSORBOARD_DIR = "tensorboard"
SUMMARY_SECTION = "summary"


def check_loggers(value: Any) -> tuple[str, ...]:
    """The logger names of a ``logger`` setting (a name or a list; null: csv only), each known and installed."""
    names = [] if value is None else [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"logger must be a list of names from {', '.join(LOGGERS)} (e.g. logger=[csv,tensorboard]), "
                         f"got {value!r}")
    for name in names:
        if name not in LOGGERS:
            near = difflib.get_close_matches(name, LOGGERS, n=1, cutoff=0.5)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ValueError(f"unknown logger {name!r} in logger={_shown(names)} ({hint}loggers: {', '.join(LOGGERS)})")
        package = PACKAGES.get(name)
        if package is not None and importlib.util.find_spec(package) is None:
            raise ValueError(f"logger={_shown(names)}: {name} needs the {package} package, which is not installed "
                             "(pip install 'metarl[tracking]')")
    return tuple(dict.fromkeys(["csv", *names]))  # csv always: the run's own files


def _shown(names: list[str]) -> str:
    return f"[{','.join(names)}]"


def scalar_items(values: Mapping[str, Any]) -> dict[str, float]:
    """The finite real numbers of ``values`` (bools, strings, lists and NaN/inf left out)."""
    out = {}
    for key, value in values.items():
        if hasattr(value, "item") and getattr(value, "size", 1) == 1:
            value = value.item()
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
            out[str(key)] = float(value)
    return out


def flatten(tree: Mapping[str, Any], separator: str = ".", prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level: ``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, separator, name + separator))
        else:
            out[name] = value
    return out


def mean_by_step(rows: Iterable[Mapping[str, Any]], step_key: str, group_key: str = "seed") -> dict[int, dict]:
    """Rows of one value per group and step -> ``{step: {name: mean over groups}}``, NaN and null left out."""
    sums: dict[int, dict[str, list[float]]] = {}
    for row in rows:
        values = scalar_items({k: v for k, v in row.items() if k not in (step_key, group_key)})
        per_step = sums.setdefault(int(row[step_key]), {})
        for name, value in values.items():
            total = per_step.setdefault(name, [0.0, 0])
            total[0] += value
            total[1] += 1
    return {step: {name: total / count for name, (total, count) in names.items()} for step, names in sums.items()}


class _TensorBoard:
    """A tensorboardX writer, opened at the first write: then the restart step (if any) is known."""

    def __init__(self, run_dir: Path, config: Mapping):
        self.logdir, self.config = run_dir / TENSORBOARD_DIR, config
        self.writer: Any = None

    def _open(self, step: int, restart: int | None) -> Any:
        if self.writer is None:
            from tensorboardX import SummaryWriter
            from tensorboardX.summary import hparams

            # purge_step: TensorBoard hides the earlier sessions' events from the restart step on. The
            # session number keeps two sessions' files apart (and in order) within one second of the clock
            session = len(list(self.logdir.glob("*tfevents*"))) if self.logdir.is_dir() else 0
            self.writer = SummaryWriter(logdir=str(self.logdir), purge_step=restart, flush_secs=30,
                                        filename_suffix=f".{session:03d}")
            self.writer.add_text("config", _config_text(self.config), step)
            _, session_start, _ = hparams(_hparam_values(self.config), {})  # metrics: TensorBoard takes every scalar
            self.writer.file_writer.add_summary(session_start, step)
        return self.writer

    def log(self, step: int, scalars: Mapping[str, float], restart: int | None) -> None:
        writer = self._open(step, restart)
        for tag, value in scalars.items():
            writer.add_scalar(tag, value, step)
        writer.flush()  # on disk together with the run's own record of the step

    def summary(self, step: int, scalars: Mapping[str, float], restart: int | None) -> None:
        self.log(step, scalars, restart)

    def close(self, step: int, restart: int | None, failed: bool) -> None:
        self._open(step, restart).close()  # nothing logged: the config alone


class _Wandb:
    """An offline W&B run per session (a resumed one named so), grouped by the run directory's name."""

    def __init__(self, run_dir: Path, config: Mapping, job: str | None):
        self.run_dir, self.config, self.job = run_dir, config, job
        self.run: Any = None

    def _open(self, restart: int | None) -> Any:
        if self.run is None:
            import wandb

            name = self.run_dir.name + ("" if restart is None else f"-resumed-at-{restart}")
            self.run = wandb.init(mode="offline", dir=str(self.run_dir), project="metarl", group=self.run_dir.name,
                                  job_type=self.job, name=name, config=dict(self.config),
                                  settings=wandb.Settings(silent=True, console="off", save_code=False))
        return self.run

    def log(self, step: int, scalars: Mapping[str, float], restart: int | None) -> None:
        self._open(restart).log(dict(scalars), step=step)

    def summary(self, step: int, scalars: Mapping[str, float], restart: int | None) -> None:
        self._open(restart).summary.update(dict(scalars))  # final numbers: W&B's run table, not a step

    def close(self, step: int, restart: int | None, failed: bool) -> None:
        self._open(restart).finish(exit_code=1 if failed else 0)


def _config_text(config: Mapping) -> str:
    """The config as a YAML block for TensorBoard's text tab (Markdown: indented lines are code)."""
    import yaml

    text = yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=None)
    return "\n".join("    " + line for line in text.splitlines())


def _hparam_values(config: Mapping) -> dict[str, Any]:
    """Flattened config values TensorBoard's hparams take: numbers, strings and bools (lists as text)."""
    values = {}
    for key, value in flatten(config).items():
        if isinstance(value, (list, tuple)):
            value = str(list(value))
        if isinstance(value, (bool, int, float, str)):
            values[key] = value
    return values


class Tracker:
    """Sends scalars to the chosen loggers; see the module docstring."""

    def __init__(self, run_dir: str | Path, loggers: Any = ("csv",), config: Mapping | None = None,
                 resume: bool = False, job: str | None = None):
        self.loggers = check_loggers(loggers)
        self.resume = resume
        run_dir, config = Path(run_dir), dict(config or {})
        self.sinks: list[Any] = []
        if "tensorboard" in self.loggers:
            self.sinks.append(_TensorBoard(run_dir, config))
        if "wandb" in self.loggers:
            self.sinks.append(_Wandb(run_dir, config, job))
        self.restart: int | None = None  # where a resumed run continues its steps
        self.last_step: int | None = None
        self.summarized = False  # the job logged its own summary

    @classmethod
    def for_job(cls, job: str, config: Mapping, run_dir: str | Path) -> Tracker:
        """The tracker of a job's resolved (plain) config: its ``logger`` list and ``resume`` switch."""
        return cls(run_dir, config.get("logger"), config, resume=bool(config.get("resume", False)), job=job)

    def restart_at(self, step: int) -> None:
        """The step a run continues from, its earlier records past it cut away; counts only when resuming."""
        if self.resume and self.restart is None:
            self.restart = int(step)

    def log(self, section: str, step: int, values: Mapping[str, Any]) -> None:
        """The finite numbers of ``values`` as ``<section>/<name>`` at ``step``."""
        scalars = {f"{section}/{k}": v for k, v in scalar_items(values).items()}
        if not scalars or not self.sinks:
            return
        step = int(step)
        for sink in self.sinks:
            sink.log(step, scalars, self.restart)
        self.last_step = step if self.last_step is None else max(self.last_step, step)

    def log_rows(self, section: str, rows: Iterable[Mapping[str, Any]], step_key: str, group_key: str = "seed") -> None:
        """Rows of one value per seed and step: the mean over seeds per step (:func:`mean_by_step`)."""
        if self.sinks:
            for step, values in sorted(mean_by_step(rows, step_key, group_key).items()):
                self.log(section, step, values)

    def log_summary(self, summary: Mapping[str, Any], section: str = SUMMARY_SECTION) -> None:
        """Final numbers (nested dicts flattened: ``<section>/a/b``): TensorBoard at the last step, W&B's summary."""
        scalars = {f"{section}/{k}": v for k, v in scalar_items(flatten(summary, "/")).items()}
        self.summarized = self.summarized or section == SUMMARY_SECTION
        if scalars:
            for sink in self.sinks:
                sink.summary(self.last_step or 0, scalars, self.restart)

    def log_job_summary(self, summary: Any) -> None:
        """What the job returned, as :meth:`log_summary`, unless the job logged its own summary."""
        if isinstance(summary, Mapping) and not self.summarized:
            self.log_summary(summary)

    def log_table(self, section: str, rows: Iterable[Mapping[str, Any]], names: Iterable[str] = ()) -> None:
        """Final table rows, each named by its text cells and its ``names`` columns
        (``<section>/<env>/<method>/lifetime_50/<column>``)."""
        names = tuple(names)
        for row in rows:
            path = [f"{k}_{v}" if k in names else str(v) for k, v in row.items() if k in names or isinstance(v, str)]
            numbers = {k: v for k, v in row.items() if k not in names and not isinstance(v, str)}
            self.log_summary(numbers, "/".join([section, *path]))

    def close(self, failed: bool = False) -> None:
        sinks, self.sinks = self.sinks, []
        for sink in sinks:
            sink.close(self.last_step or 0, self.restart, failed)


_OPEN: list[Tracker] = []  # the tracker of the running job (a stack: an inner job may open its own)


@contextlib.contextmanager
def tracked(tracker: Tracker) -> Iterator[Tracker]:
    """Make ``tracker`` the one the module functions write to; closed on the way out."""
    _OPEN.append(tracker)
    failed = True
    try:
        yield tracker
        failed = False
    finally:
        _OPEN.remove(tracker)
        tracker.close(failed)


def current() -> Tracker | None:
    return _OPEN[-1] if _OPEN else None


def restart_at(step: int) -> None:
    """:meth:`Tracker.restart_at` on the open tracker; nothing without one."""
    if _OPEN:
        _OPEN[-1].restart_at(step)


def log(section: str, step: int, values: Mapping[str, Any]) -> None:
    """:meth:`Tracker.log` on the open tracker; nothing without one."""
    if _OPEN:
        _OPEN[-1].log(section, step, values)


def log_rows(section: str, rows: Iterable[Mapping[str, Any]], step_key: str, group_key: str = "seed") -> None:
    """:meth:`Tracker.log_rows` on the open tracker; nothing without one."""
    if _OPEN:
        _OPEN[-1].log_rows(section, rows, step_key, group_key)


def log_summary(summary: Mapping[str, Any]) -> None:
    """:meth:`Tracker.log_summary` on the open tracker (instead of the job's returned summary); nothing without one."""
    if _OPEN:
        _OPEN[-1].log_summary(summary)


def log_table(section: str, rows: Iterable[Mapping[str, Any]], names: Iterable[str] = ()) -> None:
    """:meth:`Tracker.log_table` on the open tracker; nothing without one."""
    if _OPEN:
        _OPEN[-1].log_table(section, rows, names)
