"""``metarl-train``: PPO on one environment over several vmapped seeds (job ``train``).

    metarl-train env=gridworld/dense seeds=8 agent.total_timesteps=1e6
    metarl-train env=pendulum optimizer=sgd agent.anneal_lr=false

Ends with the final return (mean over seeds with a 95% bootstrap interval)
and the run directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from metarl.cli.app import run_app
from metarl.cli.output import interval, print_closing

FINAL_FRACTION = 0.1  # as the job's own summary: the mean over the last 10% of updates


def final_returns(metrics_path: Path, fraction: float = FINAL_FRACTION) -> np.ndarray:
    """Per seed: the mean episode return over the last ``fraction`` of updates (``metrics.jsonl`` rows)."""
    by_seed: dict[int, list[tuple[int, float]]] = {}
    for line in metrics_path.read_text().splitlines():
        row = json.loads(line)
        value = row.get("episode_return")
        by_seed.setdefault(row["seed"], []).append((row["update"], np.nan if value is None else float(value)))
    finals = []
    for rows in by_seed.values():
        returns = np.array([value for _, value in sorted(rows)])
        tail = returns[-max(1, int(round(len(returns) * fraction))):]
        finals.append(np.nanmean(tail) if np.isfinite(tail).any() else np.nan)  # NaN: no episode finished
    return np.array(finals)


def headline(run_dir: Path) -> str:
    """``final return: 20.45, 95% CI [14.40, 26.50] over 2 seeds (...)``."""
    from metarl.stats import bootstrap_ci

    finals = final_returns(run_dir / "metrics.jsonl")
    what = f"over {len(finals)} seed{'s' if len(finals) > 1 else ''} (mean return of the last 10% of updates)"
    if not np.isfinite(finals).any():
        return f"final return: none, no episode finished {what}"
    if len(finals) == 1:
        return f"final return: {finals[0]:.2f} {what}; seeds=N gives an interval"
    return f"final return: {interval(*bootstrap_ci(finals))} {what}"


def _print_outcome(summary: dict, run_dir: Path) -> None:
    print_closing(run_dir, [headline(Path(run_dir))])


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-train", "train", "train", after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
