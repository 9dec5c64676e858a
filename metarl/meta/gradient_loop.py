"""The one chunked meta-gradient loop: jitted chunks of meta steps, a JSONL record and a checkpoint per chunk.

``chunk(state) -> (state, metrics)`` runs a fixed number of meta steps in one
compiled call. After each chunk the host may adjust the state
(``after_chunk``, e.g. swap new levels into a pool), then the loop appends
``{"meta_step": steps done, **metrics, "seconds": ...}`` to
``meta_log.jsonl`` and saves the whole state as an orbax checkpoint
(atomic, :class:`metarl.io.checkpoint.ESCheckpointer`).

The record is written before the checkpoint, and ``resume`` cuts the log
back to the records its checkpoint covers: a run killed between the two
writes redoes that chunk and logs it once, so every record is in the log
exactly once. An unreadable newest checkpoint (truncated, corrupted) falls
back to the previous one with a warning; when none is readable the resume
is an error. ``time_limit_s`` stops the loop after the chunk that crosses
it (equal-wall-time comparisons). A chunk whose loss (``loss_key``) or
parameters turn NaN/inf stops the run with one line naming the step; that
chunk is neither logged nor checkpointed, so the last good checkpoint is kept.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metarl.io import tracking
from metarl.io.checkpoint import ESCheckpointer
from metarl.io.progress import append_records, read_log, truncate_log

LOG = "meta_log.jsonl"
CHECKPOINTS = "checkpoints"
STEP_KEY = "meta_step"


@dataclasses.dataclass
class GradientLoopResult:
    state: Any
    history: list[dict]  # the JSONL records, one per chunk
    resumed_from: int  # meta steps restored from a checkpoint (0 for a fresh run)
    wall_seconds: float  # this call's time in the loop
    stopped_by_time_limit: bool


class DivergedError(ValueError):
    """The meta-loss or the learned parameters turned NaN/inf."""


def check_finite(state: Any, metrics: dict, loss_key: str | None, step: int) -> None:
    bad_loss = loss_key is not None and loss_key in metrics and not np.isfinite(np.asarray(metrics[loss_key])).all()
    bad_params = not all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state)
                         if np.issubdtype(np.asarray(x).dtype, np.floating))
    if bad_loss or bad_params:
        what = f"{loss_key} is not finite" if bad_loss else "the state has NaN/inf values"
        raise DivergedError(f"meta step {step}: {what}; stopped, the last good checkpoint is kept (lower the meta "
                            "learning rate or clip)")


def keep_records_up_to(log_path: Path, steps_done: int) -> None:
    """Drop the records of chunks the checkpoint does not cover (all of them for a fresh run)."""
    truncate_log(log_path, steps_done + 1 if steps_done else 0, key=STEP_KEY)


def run_gradient_loop(
    chunk: Callable[[Any], tuple[Any, dict]],
    state: Any,
    run_dir: str | os.PathLike,
    total_steps: int,
    *,
    steps_done: Callable[[Any], int],
    after_chunk: Callable[[Any], Any] | None = None,
    resume: bool = False,
    time_limit_s: float | None = None,
    metadata: dict | None = None,
    report: Callable[[dict], None] | None = None,
    max_checkpoints: int = 2,
    loss_key: str | None = "meta_loss",
) -> GradientLoopResult:
    """Run ``chunk`` from ``state`` (or its newest checkpoint) until ``steps_done(state) >= total_steps``.

    ``state`` is also the restore template (structure and dtypes). ``report(record)``
    is called after each chunk (progress output).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpointer = ESCheckpointer(run_dir / CHECKPOINTS, max_to_keep=max_checkpoints)
    log_path = run_dir / LOG
    resumed_from = 0
    if resume and checkpointer.latest_generation() is not None:
        resumed_from, state, _ = checkpointer.restore(state)
    keep_records_up_to(log_path, resumed_from)
    tracking.restart_at(resumed_from + 1 if resumed_from else 0)  # the steps a resume redoes start here

    started, wall, stopped = time.perf_counter(), 0.0, False
    while steps_done(state) < total_steps:
        chunk_started = time.perf_counter()
        state, metrics = chunk(state)
        if after_chunk is not None:
            state = after_chunk(state)
        step = steps_done(state)
        metrics = jax.device_get(metrics)
        check_finite(state, metrics, loss_key, step)
        record = {STEP_KEY: step, **{k: float(v) for k, v in metrics.items()},
                  "seconds": time.perf_counter() - chunk_started}
        append_records(log_path, [record])
        tracking.log("meta", step, {k: v for k, v in record.items() if k != STEP_KEY})
        checkpointer.save(step, state, {"meta_steps_done": step, **(metadata or {})})
        if report is not None:
            report(record)
        wall = time.perf_counter() - started
        if time_limit_s is not None and wall >= time_limit_s:
            stopped = step < total_steps
            break
    checkpointer.close()
    return GradientLoopResult(state, read_log(log_path), resumed_from, wall, stopped)
