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
"""

from __future__ import annotations

import os
import re

FLAGS = ("--xla_cpu_multi_thread_eigen=false",)
WORKER_THREADS = 1
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
