"""A population's fitness spread over every device of every process, the same bit for bit on any device count.

The population (``P`` candidates) is cut into blocks of ``width`` candidates
in population order. Block ``b`` runs on device ``b mod D`` of the global
device list (``jax.devices()``: process 0's devices first), ``D`` blocks at a
time, through one ``pmap`` over each process's local devices. Every block is
one call of the same per-device program (``fitness_fn`` vmapped over
``width`` candidates), whatever ``D`` is, so a candidate's fitness cannot
depend on the device count. That is not true of the obvious alternatives,
measured on CPU with PPO inner loops: ``shard_map``/GSPMD over 2 or 4 devices,
or a different vmap width, change float rounding inside the inner training
(1e-8 at first), which Adam and the environment amplify into different
returns within a few updates.

Only the first ``P / width`` devices are used when there are fewer blocks
than devices. When ``P / width`` is not a multiple of ``D`` the last round is
padded with copies of block 0 whose results are dropped (the cost is
reported as ``padding``). With several processes (``jax.distributed``) each computes the
blocks of its own devices and ``process_allgather`` brings every process the
whole fitness vector, exactly (no arithmetic on it).

``width`` defaults to the largest divisor of ``P`` that is at most
:data:`DEFAULT_WIDTH`: on the 2-core CPU class a width of 8 was as fast as or
faster than one vmap over the whole population (P = 16: 1.56 s vs 2.38 s; P =
64: 6.3 s vs 7.3 s per generation of 8k-step PPO runs), so the default costs
nothing and keeps results independent of the machine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

DEFAULT_WIDTH = 8


def default_width(population_size: int) -> int:
    """The largest divisor of ``population_size`` that is at most :data:`DEFAULT_WIDTH`."""
    return max(w for w in range(1, min(DEFAULT_WIDTH, population_size) + 1) if population_size % w == 0)


def check_width(population_size: int, width: int) -> None:
    if width < 1 or population_size % width:
        raise ValueError(f"meta.chunk_size={width} must divide meta.population_size={population_size}")


class DeviceEvaluator:
    """``evaluate(key, population) -> np.ndarray [P]`` over ``devices`` (default: all of every process).

    ``fitness_fn(key, block) -> [width]`` must treat candidates independently
    given the shared key (common random numbers), as every fitness of the
    ES trainer does.
    """

    def __init__(self, fitness_fn: Callable[[jax.Array, Any], jax.Array], population_size: int,
                 width: int | None = None, devices: list | None = None):
        self.population_size = population_size
        self.width = default_width(population_size) if width is None else width
        check_width(population_size, self.width)
        # never more devices than blocks: a device with no block of its own would only run padding
        self.devices = list(jax.devices() if devices is None else devices)[: population_size // self.width]
        self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
        # a process whose devices are all left out (devices= below the global count) only gathers
        self._first_local = self.devices.index(self.local_devices[0]) if self.local_devices else 0
        self._program = jax.pmap(fitness_fn, in_axes=(None, 0), devices=self.local_devices) \
            if self.local_devices else None

    @property
    def num_blocks(self) -> int:
        return self.population_size // self.width

    @property
    def rounds(self) -> int:
        return -(-self.num_blocks // len(self.devices))

    @property
    def padding(self) -> float:
        """The fraction of evaluated blocks that are padding (0 when the blocks fill every round)."""
        slots = self.rounds * len(self.devices)
        return (slots - self.num_blocks) / slots

    def _block_ids(self, round_index: int) -> np.ndarray:
        """The blocks this process runs in a round (padding slots run block 0)."""
        first = round_index * len(self.devices) + self._first_local
        ids = np.arange(first, first + len(self.local_devices))
        return np.where(ids < self.num_blocks, ids, 0)

    def __call__(self, key: jax.Array, population: Any) -> np.ndarray:
        blocks = jax.tree.map(
            lambda x: np.asarray(x).reshape(self.num_blocks, self.width, *np.shape(x)[1:]), population)
        dispatched = [self._program(key, jax.tree.map(lambda x, r=r: x[self._block_ids(r)], blocks))
                      for r in range(self.rounds)] if self._program else []  # all queued before one is read
        slots = np.full((self.rounds * len(self.devices), self.width), np.nan, np.float32)
        for r, values in enumerate(dispatched):
            first = r * len(self.devices) + self._first_local
            slots[first:first + len(self.local_devices)] = np.asarray(values, np.float32)
        if jax.process_count() > 1:
            slots = self._gather(slots)
        return slots[: self.num_blocks].reshape(self.population_size)

    def _gather(self, slots: np.ndarray) -> np.ndarray:
        """Each slot from the process that owns its device."""
        from jax.experimental import multihost_utils

        every = np.asarray(multihost_utils.process_allgather(slots))  # [processes, slots, width]
        owner = np.array([self.devices[s % len(self.devices)].process_index for s in range(len(slots))])
        return every[owner, np.arange(len(slots))]
