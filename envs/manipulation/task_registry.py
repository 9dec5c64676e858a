"""Task names and ids. ``TASK_NAMES`` is versioned: a task keeps its id forever (append only).

The order puts MT10's classes first, then the rest of ML10 and CW10, then the
others the suite implements.
"""

from __future__ import annotations

import difflib

from envs.manipulation.task import Task
from envs.manipulation.tasks import TASKS

TASK_NAMES = (
    # MT10
    "reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close", "button-press-topdown",
    "peg-insert-side", "window-open", "window-close",
    # the rest of ML10 (train: sweep, basketball; test: door-close, shelf-place, sweep-into, lever-pull)
    "door-close", "sweep", "basketball", "sweep-into", "shelf-place", "lever-pull",
    # the rest of CW10 and the others
    "hammer", "push-wall", "push-back", "faucet-close", "stick-pull", "handle-press-side", "peg-unplug-side",
)
VERSION = "v3"


def implemented() -> tuple[str, ...]:
    """Names of the tasks that exist, in id order."""
    return tuple(name for name in TASK_NAMES if name in TASKS)


def get_task(name: str) -> Task:
    """The task ``name`` (``"reach"`` or ``"reach-v3"``); an unknown name is a one-line error."""
    base = name[: -len("-" + VERSION)] if name.endswith("-" + VERSION) else name
    if base not in TASKS:
        near = difflib.get_close_matches(base, list(TASKS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(n + '-v3' for n in near)}?" if near else ""
        raise ValueError(f"unknown manipulation task {name!r}{hint} (known: {', '.join(implemented())})")
    return TASKS[base]
