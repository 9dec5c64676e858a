"""Continual World table and figures from ``metarl-continual`` run directories (docs/results/continual_world.md).

    python scripts/continual_world_report.py <run dir> [<run dir> ...] --reference <run dir> --out <folder>

Each run directory is a ``metarl-continual`` output (``results.npz``,
``metrics.json``). Forward transfer needs the single-task reference curves:
``--reference`` names a run that has them (``reference=true``), so runs made
with ``reference=false`` on the same stream, seeds and budget share them.
Writes ``table.md`` (AP / forgetting / FT with 95% bootstrap CIs next to the
published CW20 table), ``summary.json`` and ``<method>_task_curves.png``
(every task's success over the whole stream, Continual World's figure).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from metarl.continual.runner import evaluate_results

# Wolczyk et al. 2021, CW20 with SAC at 1 M steps per task (docs: ../shared/reference/algorithms.md §6.1)
PUBLISHED_CW20 = {
    "packnet": (0.80, -0.00, 0.18),
    "ewc": (0.60, 0.02, -0.18),
    "l2": (0.43, 0.02, -0.73),
    "agem": (0.07, 0.71, 0.15),
    "finetune": (0.05, 0.73, 0.20),
}
METRICS = (("average_performance", "AP"), ("forgetting", "F"), ("forward_transfer", "FT"),
           ("forward_transfer_raw", "FT raw"))


def load(run: Path) -> tuple[dict, dict]:
    record = json.loads((run / "metrics.json").read_text())
    with np.load(run / "results.npz") as arrays:
        results = {k: arrays[k] for k in arrays.files}
    results["segments"] = [tuple(s) for s in record["segments_run"]]
    return record, results


def fmt(m: dict | None) -> str:
    return "n/a" if m is None else f"{m['mean']:.2f} [{m['ci_low']:.2f}, {m['ci_high']:.2f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--reference", type=Path, help="a run with the single-task references (FT is n/a without)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    ref, ref_segments = None, None
    if args.reference is not None:
        ref_record, ref_results = load(args.reference)
        if "ref_perf" not in ref_results:
            parser.error(f"{args.reference} has no reference curves (run it with reference=true)")
        ref = (ref_results["ref_steps"], ref_results["ref_perf"])
        ref_segments = [tuple(s) for s in ref_record["segments_run"]]
    args.out.mkdir(parents=True, exist_ok=True)
    rows, summary = [], {}
    for run in args.runs:
        record, results = load(run)
        method = record["method"]["name"]
        if ref is not None and (results["perf"].shape[0] != ref[1].shape[0] or results["segments"] != ref_segments):
            raise SystemExit(f"{run}: seeds or segments differ from the reference run {args.reference}")
        metrics = evaluate_results(results, ref)["summary"]
        summary[method] = {"run": str(run), "stream": record["stream"], "metrics": metrics,
                           "wall_time_s": record["wall_time_s"], "seeds": int(results["perf"].shape[0])}
        published = PUBLISHED_CW20.get(method)
        pub = "n/a" if published is None else " / ".join(f"{v:.2f}" for v in published)
        rows.append(f"| {method} | " + " | ".join(fmt(metrics.get(name)) for name, _ in METRICS)
                    + f" | {pub} | {record['wall_time_s'] / 60:.0f} min |")
        shutil.copy(run / "task_curves.png", args.out / f"{method}_task_curves.png")
    header = ("| method | " + " | ".join(label for _, label in METRICS)
              + " | published CW20 AP / F / FT | wall (stream only) |\n|" + "---|" * (len(METRICS) + 3))
    (args.out / "table.md").write_text(header + "\n" + "\n".join(rows) + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, default=float))
    print(header + "\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
