"""A batched function over many independent items, spread over every device, the same bits on any device count.

:class:`BlockMap` cuts ``N`` items (ES candidates, training seeds) into blocks
of ``width`` items in order. Block ``b`` runs on device ``b mod D`` of the
device list (``jax.devices()``: process 0's devices first): every block is
one call of the same jitted single-device program (``fn`` on ``width``
items), compiled once per device, all blocks queued before any result is read
so the devices run side by side. An item's result therefore cannot depend on
the device count. That is not true of the obvious alternatives, measured on
CPU with PPO training: ``shard_map``/GSPMD over 2 or 4 devices, a ``pmap``
over 2 replicas (with an optax optimizer), or a different batch width change
float rounding inside training (about 1e-7 at first), which Adam and the
environment amplify into different returns within a few updates.

Only the first ``N / width`` devices are used when there are fewer blocks than
devices. When ``N / width`` is not a multiple of ``D`` the last round is
padded with copies of block 0 whose results are dropped (``padding`` is the
wasted fraction). With several processes (``jax.distributed``) each computes
the blocks of its own devices and ``process_allgather`` gives every process
every result, exactly (no arithmetic on them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np


class BlockMap:
    """``block_map(items, *shared) -> results``: ``fn(block, *shared)`` on every block of ``width`` items.

    ``items`` is a pytree whose leaves have leading axis ``num_items``;
    ``shared`` arguments go to every block unchanged. ``fn`` returns a pytree
    whose leaves have leading axis ``width``; the results (numpy) have leading
    axis ``num_items``, in item order.
    """

    def __init__(self, fn: Callable, num_items: int, width: int, devices: list | None = None):
        if width < 1 or num_items % width:
            raise ValueError(f"a block width of {width} must divide the {num_items} items")
        self.fn, self.num_items, self.width = fn, num_items, width
        # never more devices than blocks: a device with no block of its own would only run padding
        self.devices = list(jax.devices() if devices is None else devices)[: num_items // width]
        self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
        # a process whose devices are all left out (fewer blocks than processes) only gathers
        self._first_local = self.devices.index(self.local_devices[0]) if self.local_devices else 0
        self._programs: dict[tuple, tuple] = {}
        self._outputs: dict[tuple, tuple] = {}  # per program: the output tree and which leaves are keys
        self._shapes: dict[tuple, list] = {}  # per program: a block's output leaves (shape and dtype)

    @property
    def num_blocks(self) -> int:
        return self.num_items // self.width

    @property
    def rounds(self) -> int:
        return -(-self.num_blocks // len(self.devices))

    @property
    def padding(self) -> float:
        """The fraction of evaluated blocks that are padding (0 when the blocks fill every round)."""
        slots = self.rounds * len(self.devices)
        return (slots - self.num_blocks) / slots

    def _program(self, treedef: Any, impls: tuple) -> Callable:
        """``fn`` on flat leaves with PRNG keys as their raw data, jitted (one executable per device).

        (Typed key arrays cannot become numpy arrays, which gathering and
        checkpointing need; they travel as data and are wrapped back.)
        """
        cache_key = (treedef, impls)
        if cache_key not in self._programs:
            def flat_fn(data: list, *shared: Any) -> list:
                leaves = [jax.random.wrap_key_data(d, impl=i) if i else d for d, i in zip(data, impls)]
                out_leaves, out_def = jax.tree.flatten(self.fn(jax.tree.unflatten(treedef, leaves), *shared))
                self._outputs[cache_key] = (out_def, tuple(_key_impl(x) for x in out_leaves))  # at trace time
                return [jax.random.key_data(x) if _key_impl(x) else x for x in out_leaves]

            self._programs[cache_key] = jax.jit(flat_fn)
        return self._programs[cache_key]

    def __call__(self, items: Any, *shared: Any) -> Any:
        leaves, treedef = jax.tree.flatten(items)
        impls = tuple(_key_impl(x) for x in leaves)
        blocks = [np.asarray(jax.random.key_data(x) if i else x) for x, i in zip(leaves, impls)]
        blocks = [x.reshape(self.num_blocks, self.width, *x.shape[1:]) for x in blocks]
        program, cache_key = self._program(treedef, impls), (treedef, impls)
        shared_on = {d: jax.device_put(shared, d) for d in self.local_devices}
        # every block queued on its device before the first result is read, so the devices run side by side
        dispatched = [(slot, program(jax.device_put([x[block] for x in blocks], device), *shared_on[device]))
                      for slot, block, device in self._local_slots()]
        if cache_key not in self._shapes:  # once per program: the outputs of one block
            self._shapes[cache_key] = jax.eval_shape(program, [x[0] for x in blocks], *shared)
        out_def, out_impls = self._outputs[cache_key]
        slots = [np.zeros((self.rounds * len(self.devices), *s.shape), s.dtype) for s in self._shapes[cache_key]]
        for slot, values in dispatched:
            for leaf, value in zip(slots, jax.device_get(values)):
                leaf[slot] = value
        if jax.process_count() > 1:
            slots = self._gather(slots)
        out = [s[: self.num_blocks].reshape(self.num_items, *s.shape[2:]) for s in slots]
        out = [jax.random.wrap_key_data(x, impl=i) if i else x for x, i in zip(out, out_impls)]
        return jax.tree.unflatten(out_def, out)

    def _local_slots(self) -> list[tuple[int, int, Any]]:
        """(slot, block, device) of every block this process runs, round by round (padding slots run block 0)."""
        slots = []
        for r in range(self.rounds):
            for k, device in enumerate(self.local_devices):
                slot = r * len(self.devices) + self._first_local + k
                slots.append((slot, slot if slot < self.num_blocks else 0, device))
        return slots

    def _gather(self, slots: list) -> list:
        """Each slot from the process that owns its device."""
        from jax.experimental import multihost_utils

        every = multihost_utils.process_allgather(slots)  # leaves [processes, slots, ...]
        owner = np.array([self.devices[s % len(self.devices)].process_index for s in range(len(slots[0]))])
        return [np.asarray(e)[owner, np.arange(len(owner))] for e in every]


def _key_impl(x: Any) -> str | None:
    """The PRNG implementation's name of a typed key array, None for any other leaf."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return str(jax.random.key_impl(x))
    return None
