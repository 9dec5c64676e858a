"""Orbax checkpoints of an ES run: the strategy state, the generation, JSON metadata.

Saves are synchronous; orbax writes each step into a temporary directory and
renames it when complete, so a run killed mid-save leaves the previous
checkpoint intact and the partial one invisible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp


class ESCheckpointer:
    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3):
        self.directory = Path(directory).absolute()
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False
            ),
        )

    def latest_generation(self) -> int | None:
        """Number of completed generations in the newest checkpoint (None if none)."""
        return self._manager.latest_step()

    def save(self, generations_done: int, es_state: Any, metadata: dict) -> None:
        self._manager.save(
            generations_done,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(es_state), metadata=ocp.args.JsonSave(metadata)
            ),
            force=True,
        )
        self._manager.wait_until_finished()

    def restore(self, es_state_template: Any, generations_done: int | None = None) -> tuple[int, Any, dict]:
        """Returns (generations_done, es_state, metadata); template gives structure and dtypes."""
        step = self.latest_generation() if generations_done is None else generations_done
        if step is None:
            raise ValueError(f"no checkpoint to resume from in {self.directory}")
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, es_state_template)
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), metadata=ocp.args.JsonRestore()),
        )
        return step, restored["state"], restored["metadata"]

    def close(self) -> None:
        self._manager.close()
