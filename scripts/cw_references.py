"""Continual World's reference runs for an existing ``metarl-continual`` SAC run, without rerunning its stream.

    python scripts/cw_references.py <run dir> --out <folder> --multitask     # one SAC on all tasks at once
    python scripts/cw_references.py <run dir> --out <folder> --single-task   # from scratch on each task alone

Reads ``<run dir>/config.yaml`` (the stream, agent, evaluation and seeds the run used).

``--multitask`` trains one SAC on all the stream's tasks at once for the stream's total steps
(:func:`metarl.continual.sac_runner.multitask_run`, the job's ``multitask=true`` path) and writes
``multitask.json`` (average performance: the mean final success over tasks, last-5 evaluations, 95 % bootstrap
CI over seeds; wall time) and ``multitask.npz`` (the curves).

``--single-task`` runs the from-scratch single-task references forward transfer needs
(:func:`metarl.continual.sac_runner.sac_reference_runs`, the job's ``reference=true`` path) and writes
``metrics.json`` and ``results.npz`` in the layout ``scripts/continual_world_report.py --reference`` reads, so
every run made with ``reference=false`` on the same stream, seeds and budget shares them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from metarl.continual.sac_runner import (SACContinualRunner, multitask_average_performance, multitask_run,
                                        sac_reference_runs, segments_run)
from metarl.jobs.continual import build


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--multitask", action="store_true", help="the multi-task reference")
    parser.add_argument("--single-task", action="store_true", help="the per-task from-scratch references")
    args = parser.parse_args(argv)
    if not (args.multitask or args.single_task):
        parser.error("choose --multitask and/or --single-task")
    config = args.run / "config.yaml"
    if not config.is_file():
        parser.error(f"{config} does not exist (a metarl-continual run directory has one)")
    cfg = OmegaConf.to_container(OmegaConf.load(config), resolve=True)
    cfg["method"] = {"name": "finetune"}  # a reference run has no switches, so the method does not matter
    stream, agent, method, run_cfg, switch = build(cfg)
    if switch is None:
        parser.error(f"{args.run} is not a SAC run (these are Continual World's references, for SAC streams)")
    runner = SACContinualRunner(stream, agent, method, run_cfg, switch)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.single_task:
        single_task(runner, args.out)
    if args.multitask:
        multitask(runner, args.out)


def single_task(runner: SACContinualRunner, out_dir: Path) -> None:
    t0 = time.time()
    ref_steps, ref_perf = sac_reference_runs(runner, progress=True)
    segments = segments_run(runner.stream.segments, runner.chunk_steps)  # as a stream run records them
    np.savez(out_dir / "results.npz", ref_steps=ref_steps, ref_perf=ref_perf)
    record = {"stream": runner.stream.id, "segments_run": segments, "seeds": runner.run_cfg.seeds,
              "peak_task_success": np.nanmax(np.nanmean(ref_perf, axis=0), axis=0).tolist(),
              "wall_time_s": time.time() - t0}
    (out_dir / "metrics.json").write_text(json.dumps(record, indent=1, default=float))
    print(f"single-task references: peak seed-mean success per task {np.round(record['peak_task_success'], 2)} "
          f"({record['wall_time_s'] / 60:.0f} min with compiles)")


def multitask(runner: SACContinualRunner, out_dir: Path) -> None:
    out = multitask_run(runner, progress=True)
    steps, perf = out["eval_steps"], out["perf"]
    final, (mean, low, high) = multitask_average_performance(steps, perf)
    np.savez(out_dir / "multitask.npz", eval_steps=steps, perf=perf, returns=out["returns"])
    record = {"stream": runner.stream.id, "seeds": int(perf.shape[0]), "per_seed": final.tolist(),
              "average_performance": {"mean": mean, "ci_low": low, "ci_high": high},
              "peak_task_success": np.max(np.mean(perf, axis=0), axis=0).tolist(), "wall_time_s": out["wall_time_s"]}
    (out_dir / "multitask.json").write_text(json.dumps(record, indent=1, default=float))
    print(f"multi-task reference average_performance: {mean:.3f} [{low:.3f}, {high:.3f}] "
          f"({perf.shape[0]} seeds, {out['wall_time_s'] / 60:.0f} min)")


if __name__ == "__main__":
    main()
