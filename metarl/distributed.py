"""Several processes, one run: ``jax.distributed`` from the config's ``distributed`` section, or from SLURM.

    metarl-meta-train distributed.coordinator=host0:7777 distributed.num_processes=2 distributed.process_id=0
    metarl-meta-train distributed.coordinator=host0:7777 distributed.num_processes=2 distributed.process_id=1

Under SLURM (``srun``, more than one task) the three values come from SLURM's
environment when the section leaves them null. Every process runs the same
job; the ES trainer spreads each generation's population over the devices of
all of them (:mod:`metarl.meta.devices`). Process 0 (:func:`is_primary`) owns
the run directory; the others write into a private scratch directory that is
removed at exit, and read their resume state from process 0's checkpoints.

:func:`check` validates the section without touching JAX (the CLI's up-front
checks); :func:`initialize` connects, failing in ``timeout_s`` seconds with one
line naming the coordinator rather than hanging.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

_ADDRESS = re.compile(r"^(?P<host>[A-Za-z0-9_.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d+)$")
# what SLURM exports for each task of an `srun` step
_SLURM_TASKS, _SLURM_RANK, _SLURM_NODES = "SLURM_NTASKS", "SLURM_PROCID", "SLURM_STEP_NODELIST"
DEFAULT_PORT = 29517
_JOINED: list = []  # the settings this process joined with (at most one)


@dataclasses.dataclass(frozen=True)
class DistributedSettings:
    coordinator: str | None = None  # "host:port" of process 0
    num_processes: int = 1
    process_id: int = 0
    timeout_s: int = 60  # give up connecting after this long

    @property
    def enabled(self) -> bool:
        return self.num_processes > 1


def _integer(value: Any, name: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"distributed.{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"distributed.{name}={value} is out of range (it must be {bound})")
    return value


def _slurm(environ: dict) -> dict:
    """The section's values SLURM implies for an ``srun`` step of several tasks ({} outside one)."""
    tasks = environ.get(_SLURM_TASKS)
    if not tasks or int(tasks) < 2:
        return {}
    first_node = environ.get(_SLURM_NODES, "localhost").split(",")[0]
    first_node = re.sub(r"\[(\d+).*", r"\1", first_node)  # node[03-05] -> node03
    return {"num_processes": int(tasks), "process_id": int(environ.get(_SLURM_RANK, 0)),
            "coordinator": f"{first_node}:{DEFAULT_PORT}"}


def check(section: Any, environ: dict | None = None) -> DistributedSettings:
    """The ``distributed`` section (a mapping or None) as settings; any impossible value is a one-line error."""
    section = dict(section or {})
    unknown = sorted(set(section) - {f.name for f in dataclasses.fields(DistributedSettings)})
    if unknown:
        raise ValueError(f"unknown distributed option {unknown[0]!r} (options: coordinator, num_processes, "
                         "process_id, timeout_s)")
    # SLURM's values fill what the section leaves null, unless the section sets the process count itself
    implied = _slurm(dict(os.environ if environ is None else environ)) if section.get("num_processes") is None else {}
    values = {k: v for k, v in section.items() if v is not None}
    values = {**implied, **values}
    num = _integer(values.get("num_processes", 1), "num_processes", 1)
    process_id = _integer(values.get("process_id", 0), "process_id", 0)
    if process_id >= num:
        raise ValueError(f"distributed.process_id={process_id} is out of range for distributed.num_processes={num} "
                         f"(ids run 0..{num - 1})")
    timeout = _integer(values.get("timeout_s", 60), "timeout_s", 1)
    coordinator = values.get("coordinator")
    if num > 1:
        if not coordinator:
            raise ValueError(f"distributed.num_processes={num} needs distributed.coordinator=<host>:<port> "
                             "(process 0's address)")
        match = _ADDRESS.match(str(coordinator))
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError(f"distributed.coordinator={coordinator!r} is not <host>:<port> with a port in 1..65535")
    return DistributedSettings(coordinator and str(coordinator), num, process_id, timeout)


def _reachable(address: str, timeout_s: float) -> bool:
    """Whether something accepts TCP connections at ``host:port`` within ``timeout_s`` (polled: it may start later)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)


def _give_up(message: str) -> None:
    print(f"{os.path.basename(sys.argv[0]) or 'metarl'}: error: {message}", file=sys.stderr, flush=True)
    os._exit(2)  # jaxlib aborts the process itself a little later; leave first, with one line


def initialize(settings: DistributedSettings) -> None:
    """Join the run's processes (nothing for one process); must run before JAX computes anything.

    A process other than 0 first waits (up to ``timeout_s``) for the coordinator to
    accept connections; then ``jax.distributed.initialize`` must complete within
    ``timeout_s`` too. Either failure is one error line and exit status 2: a
    watchdog leaves before jaxlib's own deadline, which would abort the process
    with a stack trace.
    """
    if not settings.enabled or _JOINED:
        return  # a second job of the same process (a sweep's jobs in one process) is already connected
    who = f"distributed: process {settings.process_id} of {settings.num_processes}"
    if settings.process_id != 0 and not _reachable(settings.coordinator, settings.timeout_s):
        raise ConnectionError(f"{who}: nothing accepts connections at the coordinator {settings.coordinator} "
                              f"after {settings.timeout_s}s (is process 0 running there?)")
    import jax

    watchdog = threading.Timer(settings.timeout_s, _give_up, [
        f"{who} could not join the others through {settings.coordinator} within {settings.timeout_s}s "
        "(are all distributed.num_processes processes started?)"])
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(settings.coordinator, settings.num_processes, settings.process_id,
                                   initialization_timeout=settings.timeout_s + 30)
    except Exception as error:  # noqa: BLE001 (jaxlib raises its own runtime errors; all mean "not connected")
        reason = " ".join(str(error).split())[:200]
        raise ConnectionError(f"{who} could not join the coordinator {settings.coordinator} ({reason})") from None
    finally:
        watchdog.cancel()
    _JOINED.append(settings)


def leave_if_joined(status: int) -> None:
    """End a process that joined others now (flushing output), skipping JAX's exit barrier.

    That barrier waits up to 5 minutes for every process; after an error here the
    others stop on their own when this one's heartbeat stops.
    """
    if _JOINED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def process_index() -> int:
    import jax

    return jax.process_index()


def is_primary() -> bool:
    """Whether this process owns the run directory (process 0, or the only process)."""
    return process_index() == 0


_PRIMARY_RUN_DIRS: dict[Path, Path] = {}


def use_scratch_run_dir(run_dir: str | os.PathLike) -> Path:
    """A non-primary process's private run directory standing in for ``run_dir`` (removed at exit)."""
    scratch = Path(tempfile.mkdtemp(prefix=f"metarl-process{process_index()}-")).resolve()
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    _PRIMARY_RUN_DIRS[scratch] = Path(run_dir)
    return scratch


def primary_run_dir(run_dir: str | os.PathLike) -> Path:
    """The run directory process 0 writes, for a process given ``run_dir`` (its own, or its scratch stand-in)."""
    run_dir = Path(run_dir)
    return _PRIMARY_RUN_DIRS.get(run_dir.resolve(), run_dir)
