"""``metarl-continual``: PPO or SAC across a task stream, Continual World metrics (job ``continual``).

    metarl-continual benchmark=ccartpole5 method=ewc seeds=3
    metarl-continual benchmark=cgw10 method=redo seeds=5 benchmark.steps_per_task=100000
    metarl-continual benchmark=cw10 seeds=3 benchmark.steps_per_task=20000   # Continual World, SAC

Ends with average performance, forgetting and forward transfer (mean over
seeds, 95% bootstrap interval) and the run directory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from metarl.cli.app import run_app
from metarl.cli.output import interval, print_closing

HEADLINE = (("average_performance", "AP"), ("forgetting", "forgetting"), ("forward_transfer", "FT"))


def headline(record: dict) -> str:
    """``<stream>, <method>: AP 0.510, 95% CI [...] | forgetting ... | FT ...`` (FT needs reference=true)."""
    parts = []
    for key, label in HEADLINE:
        m = record["metrics"].get(key)
        if m is None or m["mean"] is None or not math.isfinite(m["mean"]):
            parts.append(f"{label} n/a")
        else:
            parts.append(f"{label} {interval(m['mean'], m['ci_low'], m['ci_high'], digits=3)}")
    seeds = max((m.get("n_seeds", 0) for m in record["metrics"].values()), default=0)
    seeds_text = f"{seeds} seed{'s' if seeds != 1 else ''}"
    return f"{record['stream']}, {record['method']['name']}, {seeds_text}: " + " | ".join(parts)


def _print_outcome(record: dict, run_dir: Path) -> None:
    print_closing(run_dir, [headline(record)])


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-continual", "continual", "continual", after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
