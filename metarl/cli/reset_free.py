"""``metarl-reset-free``: naive, forward-backward or RISC under EARL's protocol (job ``reset_free``).

    metarl-reset-free task=four-rooms-v1 algorithm=risc seeds=5
    metarl-reset-free task=four-rooms-v1 algorithm=risc bootstrap=timeout_as_terminal seeds=5

Ends with the deployed success (RISC's score: mean of the last five evaluations;
mean over seeds with a 95% bootstrap interval), interventions used, and the run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from metarl.cli.app import run_app
from metarl.cli.output import interval, print_closing


def headline(summary: dict) -> str:
    """``four-rooms-v1, risc (bootstrap correct), 5 seeds: deployed success 0.80 [..] | 1 intervention | ...``."""
    s = summary["deployed_success"]
    n = int(summary["interventions"])
    return (f"{summary['task']}, {summary['algorithm']} (bootstrap {summary['bootstrap']}), {s['n_seeds']} seeds: "
            f"deployed success {interval(s['mean'], s['ci_low'], s['ci_high'], digits=3)} | "
            f"{n} intervention{'s' if n != 1 else ''} | {summary['steps']:,} steps in {summary['wall_time_s']:.0f}s")


def _print_outcome(summary: dict, run_dir: Path) -> None:
    print_closing(run_dir, [headline(summary)])


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-reset-free", "reset_free", "reset_free", after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
