"""Before a job computes anything: how many CPU devices XLA shows, and which processes form the run.

Read from the config's ``cpu_devices`` (the meta-train jobs: ``auto`` = one
device per core) and ``distributed`` section (:mod:`metarl.distributed`).
Both must take effect before JAX starts its backend, so the app calls
:func:`start` before the job's first computation.
"""

from __future__ import annotations

from typing import Any

from metarl import distributed
from metarl.config import plain
from metarl.runtime import configure_cpu_devices


def check(cfg: Any) -> distributed.DistributedSettings:
    """Both settings, validated without starting anything (one line for a bad value)."""
    from metarl.runtime import cpu_device_count

    if cfg.get("cpu_devices") is not None:
        cpu_device_count(plain(cfg.get("cpu_devices")))
    return distributed.check(plain(cfg.get("distributed")))


def start(cfg: Any) -> distributed.DistributedSettings:
    """Apply ``cpu_devices`` and join the other processes (a timeout, not a hang, when they cannot be reached)."""
    settings = check(cfg)
    if cfg.get("cpu_devices") is not None:
        configure_cpu_devices(plain(cfg.get("cpu_devices")))
    distributed.initialize(settings)
    return settings


def barrier(settings: distributed.DistributedSettings, name: str) -> None:
    """Wait for every process of a multi-process run (nothing for one process)."""
    if settings.enabled:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
