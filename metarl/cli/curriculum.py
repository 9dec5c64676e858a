"""``metarl-curriculum``: PPO under a teacher, scored on held-out tasks (job ``curriculum``).

    metarl-curriculum teacher=alp_gmm env=stumps agent.total_timesteps=200000
    metarl-curriculum env=maze teacher=plr eval.set=named
"""

from __future__ import annotations

from collections.abc import Sequence

from metarl.cli.app import run_app


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-curriculum", "curriculum", "curriculum", argv=argv)


if __name__ == "__main__":
    main()
