"""Progress reports from inside a jitted training loop (the tqdm bars of the console scripts)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

REPORTS = 20  # reports per loop, plus the last update


def report_progress(callback: Callable | None, done: jax.Array, period: int, total: int) -> None:
    """Call ``callback(done)`` on the host every ``period`` updates and after the last one."""
    if callback is None:
        return
    report = jnp.logical_or(done % period == 0, done == total)
    jax.lax.cond(report, lambda: jax.debug.callback(callback, done), lambda: None)


def scan_updates(update: Callable[[Any], tuple[Any, dict]], state: Any, n_updates: int,
                 callback: Callable | None = None) -> tuple[Any, dict]:
    """``n_updates`` calls of ``update`` in one ``lax.scan``; metrics have leading axis ``n_updates``."""
    period = max(1, n_updates // REPORTS)

    def body(state, index):
        state, metrics = update(state)
        report_progress(callback, index + 1, period, n_updates)
        return state, metrics

    return jax.lax.scan(body, state, jnp.arange(n_updates))
