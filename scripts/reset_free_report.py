"""One table and one figure from several ``metarl-reset-free`` runs of one task (e.g. naive, fbrl, risc, ablation).

    python scripts/reset_free_report.py <run dir> [<run dir> ...] --out docs/results/figures/reset_free_<task>.png

Prints a Markdown table: per run, the deployed success (RISC's score: mean of the last five
evaluations per seed; mean over seeds with a 95% bootstrap interval), the continuing return per
step, interventions, switches, steps and wall time. The figure shows every run's deployed success
against environment steps (mean over seeds, shaded 95% bootstrap interval).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from metarl.eval.report import plot_learning_curve
from metarl.io.progress import read_log


def curve(run: Path, key: str = "deployed_success") -> tuple[np.ndarray, np.ndarray]:
    rows = read_log(run / "metrics.jsonl")
    seeds = max(r["seed"] for r in rows) + 1
    periods = max(r["period"] for r in rows) + 1
    values, steps = np.full((seeds, periods), np.nan), np.zeros(periods)
    for r in rows:
        values[r["seed"], r["period"]] = r[key]
        steps[r["period"]] = r["steps"]
    return steps, values


def label(summary: dict) -> str:
    name = summary["algorithm"]
    return name if summary["bootstrap"] == "correct" else f"{name} ({summary['bootstrap']})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the figure (png)")
    args = parser.parse_args()
    summaries = [json.loads((run / "summary.json").read_text()) for run in args.runs]
    tasks = {s["task"] for s in summaries}
    if len(tasks) != 1:
        raise SystemExit(f"reset_free_report: runs of several tasks ({', '.join(sorted(tasks))}); give one task's runs")
    print("| algorithm | deployed success (last 5 evals) | 95% CI | continuing return / step | interventions | "
          "switches / seed | seeds | steps | wall time |")
    print("|---|---|---|---|---|---|---|---|---|")
    curves = {}
    for run, s in zip(args.runs, summaries):
        d, c = s["deployed_success"], s["continuing_return_per_step"]
        print(f"| {label(s)} | {d['mean']:.3f} | [{d['ci_low']:.3f}, {d['ci_high']:.3f}] | {c['mean']:.4f} "
              f"[{c['ci_low']:.4f}, {c['ci_high']:.4f}] | {s['interventions']:.0f} | {s['switches_per_seed']:.0f} | "
              f"{d['n_seeds']} | {s['steps']:,} | {s['wall_time_s']:.0f} s |")
        steps, values = curve(run)
        curves[label(s)] = values
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_learning_curve(args.out, steps, curves, ylabel="deployed success", title=f"{tasks.pop()}: deployed policy")
    print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()
