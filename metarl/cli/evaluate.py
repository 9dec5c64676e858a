"""``metarl-evaluate``: evaluate an artifact; its recorded kind chooses the evaluation job.

    metarl-evaluate artifact=<learned_objective.npz | run dir> env=CartPole-v1 seeds=8 compare=[ppo,dpo]
    metarl-evaluate artifact=<learned_optimizer.npz> compare_optimizers=[adam] env=[CartPole-v1,Acrobot-v1]
    metarl-evaluate artifact=<learned_rule.npz> levels=[dense,long,small] baselines=[a2c,ppo,random]
    metarl-evaluate objective=dpo optimizer=adam@1e-3     # no artifact: fixed objective x zoo optimizer

Its config (``configs/evaluate/evaluate.yaml``) sits apart from the other
groups, so ``objective=``, ``optimizer=`` and ``env=`` are plain values here.
The job prints the aggregate table (IQM and 95% CI per method and env); the
command ends with the output directory and what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from metarl.cli.app import CONFIG_PACKAGE, run_app
from metarl.cli.output import print_closing

DEFAULT_JOB = "evaluate_objective"


def job_for(cfg) -> str:
    """The registered job that reads the artifact's kind; ``evaluate_objective`` without an artifact."""
    from metarl.jobs import registry
    from metarl.jobs.evaluate import artifact_kind

    kind = artifact_kind(cfg)
    return registry.job_reading(kind).name if kind is not None else DEFAULT_JOB


def _print_outcome(summary: dict, run_dir: Path) -> None:
    print_closing(run_dir)  # the job has just printed the aggregate table


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-evaluate", "evaluate", job_for, config_package=f"{CONFIG_PACKAGE}.evaluate",
            after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
