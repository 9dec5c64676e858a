"""Job ``curriculum`` (``metarl-curriculum``): train PPO under a teacher, score held-out tasks.

    metarl-curriculum teacher=alp_gmm env=stumps agent.total_timesteps=200000
    metarl-curriculum teacher=robust_plr env=maze teacher.capacity=256 eval.set=named

Teachers come from the config group ``configs/teacher/``, environments from
``configs/env/``; training and the held-out evaluation are
:mod:`metarl.eval.curriculum`. Writes ``summary.json`` and ``metrics.npz``
(per-update training metrics) to the run directory and prints the summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from metarl.config import plain
from metarl.eval.curriculum import prepare, train_and_evaluate
from metarl.io import tracking
from metarl.jobs.registry import APP_SECTIONS, Job, register

NOT_CURRICULUM = ("run_dir", "sweep", *APP_SECTIONS)  # where to write, what to log and report: not curriculum settings


def check(cfg: Any) -> None:
    """Every setting of ``cfg`` checked (teacher, env, agent, held-out set) without training or writing."""
    prepare({k: v for k, v in plain(cfg).items() if k not in NOT_CURRICULUM})


def log_updates(metrics: dict[str, np.ndarray]) -> None:
    """The per-update training metrics to the tracker; the run is one compiled program, so at its end."""
    series = {k: np.asarray(v, np.float64) for k, v in metrics.items() if np.ndim(v) == 1}
    updates = max((len(v) for v in series.values()), default=0)
    series = {k: v for k, v in series.items() if len(v) == updates}
    for update in range(updates):
        tracking.log("curriculum", update, {k: v[update] for k, v in series.items()})


def run(cfg: Any, run_dir: str | Path) -> dict[str, Any]:
    """Train and evaluate ``cfg`` (the ``curriculum`` config); write the run directory."""
    cfg = {k: v for k, v in plain(cfg).items() if k not in NOT_CURRICULUM}
    summary, metrics = train_and_evaluate(cfg)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    np.savez(run_dir / "metrics.npz", **metrics)
    log_updates(metrics)
    print(json.dumps(summary, indent=2))
    print(f"run directory: {run_dir}")
    return summary


JOB = register(Job("curriculum", run, "curriculum", "PPO under a teacher, scored on held-out tasks",
                   sections=("seed", "env", "agent", "teacher", "eval", "run_dir"), headline="mastered"))
