"""Orbax checkpoints of a run's loop state (ES state, meta-gradient state, PPO runner state), verified on load.

Saves are synchronous; orbax writes each step into a temporary directory and
renames it when complete, so a run killed mid-save leaves the previous
checkpoint intact and the partial one invisible.

Every save records a SHA-256 digest of the state's arrays in the step's JSON
metadata. :meth:`ESCheckpointer.restore` reads the newest step, recomputes the
digest and, when the step cannot be read or does not match (a truncated or
corrupted file), falls back to the next older step with one warning line on
stderr and discards the bad newer steps (so the resumed run can save them
again). When no step is readable it raises ``ValueError`` (one line, no
traceback at the command line): the run cannot resume.

Zero-size arrays (orbax refuses them; e.g. PLR's ``parent_slots``) hold no
data: they are left out of the step and rebuilt from the template on restore.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

DIGEST_KEY = "state_sha256"


def state_digest(state: Any) -> str:
    """SHA-256 over every array leaf of ``state`` (dtype, shape and bytes, in tree order)."""
    digest = hashlib.sha256()
    for leaf in jax.tree.leaves(state):
        dtype = getattr(leaf, "dtype", None)
        if dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        array = np.ascontiguousarray(jax.device_get(leaf))
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _is_empty(leaf: Any) -> bool:
    shape = getattr(leaf, "shape", None)
    return shape is not None and 0 in tuple(shape)


def _without_empty(tree: Any) -> Any:
    """``tree`` with its zero-size array leaves as ``None`` (an empty subtree: nothing to save)."""
    return jax.tree.map(lambda leaf: None if _is_empty(leaf) else leaf, tree)


def _with_empty(stored: Any, template: Any) -> Any:
    """The inverse of :func:`_without_empty`: zero-size leaves of ``template`` back as (host) arrays."""
    leaves, treedef = jax.tree.flatten(template)
    if not any(_is_empty(leaf) for leaf in leaves):
        return stored
    kept = iter(jax.tree.leaves(stored))
    return jax.tree.unflatten(treedef, [np.zeros(leaf.shape, leaf.dtype) if _is_empty(leaf) else next(kept)
                                        for leaf in leaves])


@contextlib.contextmanager
def _quiet_orbax() -> Iterator[None]:
    # orbax (absl) and its asyncio reads log at ERROR what they cannot parse in a damaged step, the
    # latter when the failed read futures are garbage-collected; the caller reports it in one line instead
    loggers = [logging.getLogger(name) for name in ("absl", "asyncio")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        gc.collect()
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _reason(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


class ESCheckpointer:
    """Numbered orbax checkpoints (``directory/<step>``) of a pytree plus JSON metadata."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3, writer: bool = True):
        """``writer=False``: this process only restores (another process of a multi-process run saves)."""
        self.directory = Path(directory).absolute()
        self.writer = writer
        me = jax.process_index()
        if writer:
            self.directory.mkdir(parents=True, exist_ok=True)  # orbax will not create it for a process subset
        with _quiet_orbax():
            self._manager = ocp.CheckpointManager(
                self.directory,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=max_to_keep, create=False, enable_async_checkpointing=False,
                    # each process alone: the state is replicated (every process computes it), one of them writes
                    multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me}),
                ),
            )

    def steps(self) -> list[int]:
        """The completed steps on disk, oldest first."""
        return sorted(self._manager.all_steps())

    def latest_generation(self) -> int | None:
        """The newest step on disk (None if none); not yet verified, see :meth:`restore`."""
        return self._manager.latest_step()

    def save(self, step: int, state: Any, metadata: dict) -> None:
        """Save ``state`` as ``step`` with its digest; a step already on disk is kept as it is."""
        if not self.writer:
            raise RuntimeError("this ESCheckpointer only restores (writer=False)")
        if step in self.steps():
            return
        state = _without_empty(state)
        metadata = {**metadata, DIGEST_KEY: state_digest(state)}
        if jax.process_count() > 1:  # orbax will not write one process's device arrays in a multi-process run
            state = jax.device_get(state)
        self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), metadata=ocp.args.JsonSave(metadata)),
            force=True,
        )
        self._manager.wait_until_finished()

    def _read(self, step: int, abstract: Any) -> tuple[Any, dict]:
        with _quiet_orbax():
            restored = self._manager.restore(
                step,
                args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore()),
            )
        state, metadata = restored["state"], dict(restored["metadata"] or {})
        recorded = metadata.pop(DIGEST_KEY, None)
        if recorded is not None and recorded != state_digest(state):
            raise ValueError("the arrays do not match the digest recorded at save time")
        return state, metadata

    def restore(self, state_template: Any, generations_done: int | None = None) -> tuple[int, Any, dict]:
        """Returns (step, state, metadata) of the newest readable step (or of ``generations_done``).

        ``state_template`` gives structure and dtypes. Unreadable newer steps are
        reported on stderr and deleted; no readable step at all is a ``ValueError``.
        """
        abstract = _without_empty(jax.tree.map(ocp.utils.to_shape_dtype_struct, state_template))
        candidates = [generations_done] if generations_done is not None else self.steps()[::-1]
        if not candidates:
            raise ValueError(f"no checkpoint to resume from in {self.directory}")
        failures: list[tuple[int, str]] = []
        for step in candidates:
            try:
                state, metadata = self._read(step, abstract)
            except Exception as error:  # noqa: BLE001 (any failure to read a step means the step is unusable)
                failures.append((step, _reason(error)))
                continue
            if failures:
                self._discard([s for s, _ in failures])
                bad = ", ".join(str(s) for s, _ in failures)
                print(f"warning: checkpoint {bad} in {self.directory} is unreadable ({failures[0][1]}); "
                      f"discarded it and resumed from checkpoint {step}", file=sys.stderr, flush=True)
            return step, _with_empty(state, state_template), metadata
        bad = ", ".join(str(s) for s, _ in failures)
        raise ValueError(f"cannot resume: checkpoint {bad} in {self.directory} is unreadable ({failures[0][1]}) "
                         "and there is no older one; start a new run in another run_dir")

    def _discard(self, steps: list[int]) -> None:
        for step in steps:
            shutil.rmtree(self.directory / str(step), ignore_errors=True)
        self._manager.reload()

    def close(self) -> None:
        self._manager.close()
