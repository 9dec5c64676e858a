"""CPU defaults for XLA, applied when the package is imported (before JAX starts its backend).

* ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false``: jaxlib 0.10's
  multi-threaded Eigen pool can deadlock on small machines (seen here with
  batched LAPACK calls and long vmapped programs on 2 cores), and on CPU the
  single-threaded setting is also faster for RL-sized programs.
* ``PJRT_NPROC=1``: XLA sizes its CPU client's worker pool from this variable
  (``DefaultThreadPoolSize`` in XLA's PJRT utilities reads ``PJRT_NPROC``, then
  ``NPROC``, then the core count). An RL training loop is a long chain of tiny
  kernels; with one worker per core each hand-off between kernels can wake a
  thread on another core, which costs more than the kernel. One worker made
  PPO CartPole (1 seed) 1.5x faster on a 2-core VM (see README, "Speed") with
  16 vmapped seeds and compile time unchanged. With
  ``--xla_force_host_platform_device_count=N`` in ``XLA_FLAGS`` it is N (one
  worker per host device, so sharded work still runs in parallel). Set
  ``PJRT_NPROC`` (or ``NPROC``) yourself to choose another size.

Set ``METARL_XLA_DEFAULTS=0`` to leave the environment untouched. The
settings only take effect if no JAX computation has run yet in the process.
"""

import os
import re

FLAGS = ("--xla_cpu_multi_thread_eigen=false",)
WORKER_THREADS = 1
_DEVICE_COUNT = re.compile(r"--xla_force_host_platform_device_count=(\d+)")


def apply() -> None:
    if os.environ.get("METARL_XLA_DEFAULTS", "1") == "0":
        return
    current = os.environ.get("XLA_FLAGS", "")
    missing = [f for f in FLAGS if f.split("=")[0] not in current]
    if missing:
        os.environ["XLA_FLAGS"] = " ".join([current, *missing]).strip()
    if "PJRT_NPROC" not in os.environ and "NPROC" not in os.environ:
        devices = _DEVICE_COUNT.search(os.environ["XLA_FLAGS"])
        os.environ["PJRT_NPROC"] = str(max(WORKER_THREADS, int(devices.group(1)) if devices else 0))


apply()
