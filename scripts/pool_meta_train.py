"""Pool several ``metarl-meta-train`` runs (meta-training seeds) into one comparison: tables and a figure.

    python scripts/pool_meta_train.py RUN_DIR [RUN_DIR ...] --out docs/results/figures/main_job

Each run directory holds a finished run's ``per_seed_returns.csv`` (its evaluation). Every evaluation run of every
meta-training seed counts as one run: the table (stdout, markdown) gives each env and method's IQM with its 95%
stratified-bootstrap interval, then the learned objective's probability of improvement over each baseline (all
envs and each env, and each baseline over the others per env), then each meta-training seed's own verdict; the
figure is the pooled performance profiles (final returns min-max normalised per env).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from metarl.eval.comparison import improvement_rows, performance_profiles, plot_performance_profiles, verdict
from metarl.stats import iqm_ci

LEARNED = "(learned)"  # the label suffix of the run's own objective


def _refuse(message: str) -> None:
    print(f"pool_meta_train: {message}", file=sys.stderr)
    raise SystemExit(2)


def load(run_dir: Path) -> dict[str, dict[str, list[float]]]:
    """``{method: {env: [final return per evaluation seed]}}`` of one run."""
    path = run_dir / "per_seed_returns.csv"
    if not path.is_file():
        _refuse(f"{path} does not exist (not a finished metarl-meta-train run with evaluate.enabled)")
    scores: dict[str, dict[str, list[float]]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            scores.setdefault(row["objective"], {}).setdefault(row["env"], []).append(float(row["final_return"]))
    return scores


def as_matrices(scores: dict[str, dict[str, list[float]]], envs: list[str]) -> dict[str, np.ndarray]:
    return {method: np.array([per_env[e] for e in envs]).T for method, per_env in scores.items()}


def _ci(row: dict) -> str:
    return f"{row['p_improvement']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] | {verdict(row)}"


def report(runs: list[Path], out: Path, reps: int = 2000) -> str:
    loaded = [load(r) for r in runs]
    methods, envs = list(loaded[0]), list(next(iter(loaded[0].values())))
    learned = [m for m in methods if m.endswith(LEARNED)]
    for run, scores in zip(runs, loaded):
        if list(scores) != methods or list(next(iter(scores.values()))) != envs:
            _refuse(f"{run} compares {list(scores)} on {list(next(iter(scores.values())))}; the first run compares "
                    f"{methods} on {envs}")
    if len(learned) != 1:
        _refuse(f"{runs[0]} has no single learned objective among {methods}")
    method, baselines = learned[0], [m for m in methods if m != learned[0]]
    pooled = {m: {e: [x for s in loaded for x in s[m][e]] for e in envs} for m in methods}
    matrices = as_matrices(pooled, envs)
    if not all(np.isfinite(x).all() for x in matrices.values()):
        _refuse("some evaluation run never finished an episode (NaN final return)")

    lines = ["| env | method | IQM final return [95% CI] | mean | runs |", "|---|---|---|---:|---:|"]
    for e in envs:
        for m in methods:
            x = np.array(pooled[m][e])
            iqm, low, high = iqm_ci(x)
            lines.append(f"| {e} | {m} | {iqm:.1f} [{low:.1f}, {high:.1f}] | {x.mean():.1f} | {len(x)} |")
    lines += ["", "| comparison | envs | P(improvement) [95% CI] | verdict |", "|---|---|---|---|"]
    lines += [f"| {method} vs {r['baseline']} | all | {_ci(r)} |" for r in improvement_rows(matrices, method, baselines, reps)]
    for index, e in enumerate(envs):
        one = {m: x[:, index : index + 1] for m, x in matrices.items()}
        for x_name in [method] + baselines[:-1]:
            others = [b for b in baselines if b != x_name and methods.index(b) > methods.index(x_name)]
            lines += [f"| {x_name} vs {r['baseline']} | {e} | {_ci(r)} |" for r in improvement_rows(one, x_name, others, reps)]
    lines += ["", "| meta-training run | vs | P(improvement) [95% CI] | verdict |", "|---|---|---|---|"]
    for run, scores in zip(runs, loaded):
        lines += [f"| {run.name} | {r['baseline']} | {_ci(r)} |"
                  for r in improvement_rows(as_matrices(scores, envs), method, baselines, reps)]

    stacked = np.stack(list(matrices.values()))
    low, high = stacked.min(axis=(0, 1)), stacked.max(axis=(0, 1))
    scaled = {m: (x - low) / np.where(high > low, high - low, 1.0) for m, x in matrices.items()}
    taus = np.linspace(0.0, 1.0, 51)
    profiles, bands = performance_profiles(scaled, taus, reps)
    out.mkdir(parents=True, exist_ok=True)
    plot_performance_profiles(profiles, bands, taus, out / "pooled_performance_profile.png",
                              xlabel="final return, min-max normalised per env (τ)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="metarl-meta-train run directories")
    parser.add_argument("--out", type=Path, required=True, help="folder for pooled_performance_profile.png")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples per interval")
    args = parser.parse_args(argv)
    print(report(args.runs, args.out, args.reps))


if __name__ == "__main__":
    main()
