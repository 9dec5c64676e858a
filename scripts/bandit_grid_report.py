"""One table and one figure for several ``metarl-meta-rl`` bandit runs (Duan et al.'s k-arms x n-pulls grid).

    python scripts/bandit_grid_report.py RUN_DIR [RUN_DIR ...] --out docs/results/figures/in_context_bandit_grid.png

Each run directory holds a finished run's ``summary.json``. The table (stdout, markdown) gives every method's total
reward with its 95% CI, and RL2's budget; the figure plots each method's total reward as a share of the oracle's on
the same held-out tasks, so settings with different n share one axis.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

METHODS = ("RL2 (gru)", "Gittins", "Thompson", "UCB1", "random")


def _refuse(message: str) -> None:
    print(f"bandit_grid_report: {message}", file=sys.stderr)
    raise SystemExit(2)


def load(run_dir: Path) -> dict:
    path = run_dir / "summary.json"
    if not path.is_file():
        _refuse(f"{path} does not exist (not a finished metarl-meta-rl run)")
    summary = json.loads(path.read_text())
    if summary.get("benchmark", {}).get("baselines") != "bandit":
        _refuse(f"{run_dir} is not a bandit run (task {summary.get('task')})")
    return summary


def rows(summary: dict) -> dict[str, dict]:
    return {row["method"]: row for row in summary["table"]}


def table(summaries: list[dict]) -> str:
    head = "| task | updates | " + " | ".join(METHODS) + " | oracle |"
    lines = [head, "|---" * (len(METHODS) + 3) + "|"]
    for s in summaries:
        by = rows(s)
        cells = [f"{by[m]['mean']:.2f} [{by[m]['ci_low']:.2f}, {by[m]['ci_high']:.2f}]" if m in by else "—"
                 for m in (*METHODS, "oracle")]
        lines.append(f"| `{s['task']}` | {s['trials']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure(summaries: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    width = 0.8 / len(METHODS)
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(summaries), 3.6))
    for i, method in enumerate(METHODS):
        means, errs = [], [[], []]
        for s in summaries:
            by, oracle = rows(s), rows(s)["oracle"]["mean"]
            row = by.get(method, {"mean": np.nan, "ci_low": np.nan, "ci_high": np.nan})
            means.append(row["mean"] / oracle)
            errs[0].append((row["mean"] - row["ci_low"]) / oracle)
            errs[1].append((row["ci_high"] - row["mean"]) / oracle)
        x = np.arange(len(summaries)) + (i - (len(METHODS) - 1) / 2) * width
        ax.bar(x, means, width, yerr=errs, capsize=2, label=method)
    ax.set_xticks(np.arange(len(summaries)))
    ax.set_xticklabels([s["task"].replace("bandit-", "").replace("-v1", "") for s in summaries])
    ax.set_ylabel("total reward / oracle's")
    ax.set_ylim(0.4, 1.0)
    ax.set_title("Bernoulli bandits, held-out tasks (95% CIs)")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished metarl-meta-rl bandit run directories")
    parser.add_argument("--out", type=Path, required=True, help="the figure's path (.png)")
    args = parser.parse_args(argv)
    summaries = [load(run) for run in args.runs]
    print(table(summaries))
    figure(summaries, args.out)
    print(f"figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
