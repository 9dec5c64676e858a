"""``metarl-train``: PPO on one environment over several vmapped seeds (job ``train``).

    metarl-train env=gridworld/dense seeds=8 agent.total_timesteps=1e6
    metarl-train env=pendulum optimizer=sgd agent.anneal_lr=false
"""

from __future__ import annotations

from collections.abc import Sequence

from metarl.cli.app import run_app


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-train", "train", "train", argv=argv)


if __name__ == "__main__":
    main()
