"""``metarl-continual``: PPO across a task stream, Continual World metrics (job ``continual``).

    metarl-continual benchmark=ccartpole5 method=ewc seeds=3
    metarl-continual benchmark=cgw10 method=redo seeds=5 benchmark.steps_per_task=100000
"""

from __future__ import annotations

from collections.abc import Sequence

from metarl.cli.app import run_app


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-continual", "continual", "continual", argv=argv)


if __name__ == "__main__":
    main()
