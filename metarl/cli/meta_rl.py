"""``metarl-meta-rl``: RL² meta-trained on an in-context benchmark, evaluated on held-out tasks (job ``meta_rl``).

    metarl-meta-rl task=bandit-k5-n10-v1 seeds=5
    metarl-meta-rl task=dark-room-v1 seeds=5
    metarl-meta-rl task=dark-room-v1 teacher=plr seeds=5     # a configs/teacher/ teacher picks the training goals

Ends with the held-out trial return (mean over seeds with a 95% bootstrap interval), the in-context
curve's first and last point (episode 1 -> episode k, or pull 1 -> pull n of a one-episode bandit
trial), the baselines on the same tasks, and the run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from metarl.cli.app import run_app
from metarl.cli.output import interval, print_closing

def _baselines(summary: dict) -> str:
    """``Gittins 6.61, Thompson 6.40, ...`` (the table's rows after RL²'s), or Dark Room's optimum per episode."""
    optimal = summary["baselines"].get("optimal")
    if optimal is not None:
        return f"optimum {optimal['per_episode']:.2f} per episode"
    if "success" in summary:  # Meta-World: success of the trial's last episode (after adaptation)
        train, test = (summary["success"][split]["last_episode"] for split in ("meta_train", "meta_test"))
        return (f"success (last episode) meta-train {interval(train['mean'], train['ci_low'], train['ci_high'])}, "
                f"meta-test {interval(test['mean'], test['ci_low'], test['ci_high'])}")
    return ", ".join(f"{row['method']} {row['mean']:.2f}" for row in summary["table"][1:]) or "no baselines"


def headline(summary: dict) -> str:
    """``bandit-k5-n10-v1, RL2 (gru), 5 seeds: trial return 6.71, 95% CI [..] | pull 1 0.50 -> pull 10 0.78 | ...``."""
    t, c = summary["trial_return"], summary["curve"]
    first, last = c["x"][0], c["x"][-1]
    n = summary["n_seeds"]
    return (f"{summary['task']}, RL2 ({summary['cell']}), {n} seed{'s' if n != 1 else ''}: "
            f"trial return {interval(t['mean'], t['ci_low'], t['ci_high'])} | "
            f"{c['unit']} {first} {c['mean'][0]:.2f} -> {c['unit']} {last} {c['mean'][-1]:.2f} | {_baselines(summary)}")


def _print_outcome(summary: dict, run_dir: Path) -> None:
    print_closing(run_dir, [headline(summary)])


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-meta-rl", "meta_rl", "meta_rl", after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
