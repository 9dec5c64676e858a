"""Process-wide XLA CPU defaults, applied by the console scripts (never on import).

Library users who want the same settings call :func:`configure_cpu` once, before
the first JAX computation of the process::

    import metarl.runtime
    metarl.runtime.configure_cpu()

What it sets, and why:

* ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``: jaxlib 0.10's
  multi-threaded Eigen pool can deadlock on small machines (seen here with
  batched LAPACK calls and long vmapped programs on 2 cores), and on CPU the
  single-threaded setting is also faster for RL-sized programs.
* ``PJRT_NPROC=1``: XLA sizes its CPU client's worker pool from this variable
  (then ``NPROC``, then the core count). An RL training loop is a long chain of
  tiny kernels; with one worker per core each hand-off between kernels can wake
  a thread on another core, which costs more than the kernel. One worker made
  PPO CartPole (1 seed) 1.5x faster on a 2-core VM (see README, "Speed"). With
  ``--xla_force_host_platform_device_count=N`` in ``XLA_FLAGS`` it is N (one
  worker per host device, so sharded work still runs in parallel). Set
  ``PJRT_NPROC`` (or ``NPROC``) yourself to choose another size.

``METARL_XLA_DEFAULTS=0`` makes :func:`configure_cpu` leave the environment
untouched. The settings only take effect if no JAX backend has started yet.

:func:`configure_cpu_devices` (the meta-train config's ``cpu_devices``) makes
XLA show the CPU as N devices, so the ES population uses every core:
``auto`` is one device per core this process may run on.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

FLAGS = ("--xla_cpu_multi_thread_eigen=false",)
WORKER_THREADS = 1
_OWN_WORKERS: dict[str, str] = {}  # the worker-pool size this module set (a user's own setting is never changed)
_DEVICE_COUNT = re.compile(r"--xla_force_host_platform_device_count=(\d+)")


def configure_cpu() -> None:
    """Set the CPU defaults above in ``os.environ`` (idempotent; user settings win)."""
    if os.environ.get("METARL_XLA_DEFAULTS", "1") == "0":
        return
    current = os.environ.get("XLA_FLAGS", "")
    missing = [f for f in FLAGS if f.split("=")[0] not in current]
    if missing:
        os.environ["XLA_FLAGS"] = " ".join([current, *missing]).strip()
    if "PJRT_NPROC" not in os.environ and "NPROC" not in os.environ:
        devices = _DEVICE_COUNT.search(os.environ["XLA_FLAGS"])
        os.environ["PJRT_NPROC"] = str(max(WORKER_THREADS, int(devices.group(1)) if devices else 0))
        _OWN_WORKERS["PJRT_NPROC"] = os.environ["PJRT_NPROC"]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under ``taskset`` or a SLURM allocation)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_device_count(value: Any) -> int:
    """``auto`` -> :func:`available_cores`; a positive integer as it is; anything else is a one-line error."""
    if value == "auto":
        return available_cores()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"cpu_devices must be 'auto' or an integer >= 1, got {value!r}")
    return value


def _backend_started() -> bool:
    """Whether JAX already runs in this process (a library caller's): the flags would change nothing here."""
    if "jax" not in sys.modules:
        return False
    from jax._src import xla_bridge  # no public probe; checked by tests/test_xla_defaults.py

    return xla_bridge.backends_are_initialized()


def configure_cpu_devices(value: Any) -> int | None:
    """Show the CPU as ``cpu_device_count(value)`` devices; returns it, or None where ``XLA_FLAGS`` already chose.

    Also sizes the CPU worker pool to one thread per device (unless the user set
    ``PJRT_NPROC``/``NPROC``), so the devices run in parallel. Call before the
    first JAX computation.
    """
    count = cpu_device_count(value)
    current = os.environ.get("XLA_FLAGS", "")
    if _DEVICE_COUNT.search(current) or os.environ.get("METARL_XLA_DEFAULTS", "1") == "0" or _backend_started():
        return None
    os.environ["XLA_FLAGS"] = f"{current} --xla_force_host_platform_device_count={count}".strip()
    if _OWN_WORKERS.get("PJRT_NPROC") == os.environ.get("PJRT_NPROC") and "NPROC" not in os.environ:
        os.environ["PJRT_NPROC"] = _OWN_WORKERS["PJRT_NPROC"] = str(max(WORKER_THREADS, count))
    return count


COMPILE_CACHE_DIR = ".xla_cache"


def persist_compilation_cache(run_dir: str | os.PathLike) -> str | None:
    """Keep XLA's compiled programs in ``<run_dir's parent>/.xla_cache``, so a repeat run skips compiling.

    Runs of one job usually share a parent (``outputs/<job>/``, a sweep's directory), and a compile can cost more
    than a short run (a Brax or Playground env's rollout alone compiles in 6-24 s on a 2-core CPU,
    ``docs/results/brax.md``). JAX stores a program there once it took over a second to compile
    (``jax_persistent_cache_min_compile_time_secs``). A cache the user chose (``JAX_COMPILATION_CACHE_DIR`` or
    ``jax.config``) wins; ``METARL_XLA_CACHE=0`` turns this off. Returns the directory used, or None.
    """
    if os.environ.get("METARL_XLA_CACHE", "1") == "0" or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(os.fspath(run_dir))), COMPILE_CACHE_DIR)
    jax.config.update("jax_compilation_cache_dir", path)
    return path
