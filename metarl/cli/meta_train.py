"""``metarl-meta-train``: meta-train an objective, optimizer or LPG rule; the config's ``job`` picks which.

    metarl-meta-train                                   # LPO on CartPole-v1 with ES, then a report
    metarl-meta-train meta=snes objective=ta_lpo meta.generations=50
    metarl-meta-train objective=ppo optimizer=learned   # job meta_train_optimizer
    metarl-meta-train objective=lpg teacher=groove      # job meta_train_lpg
    metarl-meta-train resume=true run_dir=outputs/meta_train/<run>
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from metarl.cli.app import run_app


def _job(cfg) -> str:
    return str(cfg.get("job") or "meta_train")


def _print_outcome(summary: dict, run_dir: Path) -> None:
    artifact = Path(summary.get("artifact", run_dir))
    # learned_objective.npz / learned_optimizer.npz / learned_rule.npz -> "learned objective: ..."
    print(f"{artifact.stem.replace('_', ' ')}: {artifact}")
    if "report" in summary:
        print(Path(summary["report"]).read_text())
        print(f"report: {summary['report']}")
    else:
        print(f"run directory: {run_dir}")


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-meta-train", "meta_train", _job, after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
