"""``metarl-meta-train``: meta-train an objective, optimizer or LPG rule; the config's ``job`` picks which.

    metarl-meta-train                                   # LPO on CartPole-v1 with ES, then a report
    metarl-meta-train meta=snes objective=ta_lpo meta.generations=50
    metarl-meta-train objective=ppo optimizer=learned   # job meta_train_optimizer
    metarl-meta-train objective=lpg teacher=groove      # job meta_train_lpg
    metarl-meta-train resume=true run_dir=outputs/meta_train/<run>

Ends with the learned artifact, how fitness moved, the evaluation's headline
table and the report's path, then the run directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from metarl.cli.app import run_app
from metarl.cli.output import first_table, print_closing


def _job(cfg) -> str:
    return str(cfg.get("job") or "meta_train")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def headline(summary: dict) -> list[str]:
    """What each meta-train job's summary has worth a line: artifact, fitness, evaluation, report."""
    lines = []
    if "artifact" in summary:
        artifact = Path(summary["artifact"])
        # learned_objective.npz / learned_optimizer.npz / learned_rule.npz -> "learned objective: ..."
        lines.append(f"{artifact.stem.replace('_', ' ')}: {artifact}")
    if "first_fitness_mean" in summary:
        lines.append(f"ES fitness of the population mean, first -> last generation: {summary['first_fitness_mean']:.3f}"
                     f" -> {summary['last_fitness_mean']:.3f} (best candidate {summary['best_fitness']:.3f})")
    if "first_return_mean" in summary:
        lines.append(f"mean return of the population, first -> last generation: {summary['first_return_mean']:.3f}"
                     f" -> {summary['last_return_mean']:.3f}")
    if "meta_steps" in summary:
        lines.append(f"meta-gradient steps: {summary['meta_steps']} in {summary['wall_seconds']:.0f}s")
    for env, returns in summary.get("eval_learned", {}).items():
        adam = summary.get("eval_adam", {}).get(env)
        versus = f" vs Adam {_mean(adam):.2f}" if adam else ""
        lines.append(f"{env}: final return of the learned optimizer {_mean(returns):.2f}{versus} "
                     f"(mean over {len(returns)} fresh seeds)")
    if "report" in summary:
        report = Path(summary["report"])
        lines += first_table(report.read_text())
        lines.append(f"report: {report}")
    return lines


def _print_outcome(summary: dict, run_dir: Path) -> None:
    print_closing(run_dir, headline(summary))


def main(argv: Sequence[str] | None = None) -> None:
    run_app("metarl-meta-train", "meta_train", _job, after=_print_outcome, argv=argv)


if __name__ == "__main__":
    main()
