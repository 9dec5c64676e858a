"""``metarl-curriculum``: PPO under a teacher, scored on held-out tasks (job ``curriculum``).

    metarl-curriculum teacher=alp_gmm env=stumps agent.total_timesteps=200000
    metarl-curriculum env=maze teacher=plr eval.set=named

Ends with the share of held-out tasks mastered and the run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from metarl.cli.app import run_app
from metarl.cli.output import print_closing


def headline(summary: dict) -> str:
    """``held-out tasks mastered: 18.0% (stumps, teacher alp_gmm, 100,352 env steps; ...)``."""
    return (f"held-out tasks mastered: {100 * summary['mastered']:.1f}% ({summary['env']}, "
            f"teacher {summary['teacher']}, {summary['timesteps']:,} env steps; "
            f"mean held-out return {summary['test_return']:.2f})")


def _print_outcome(summary: dict, run_dir: Path) -> None:
    print_closing(run_dir, [headline(summary)])


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-curriculum", "curriculum", "curriculum", after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
