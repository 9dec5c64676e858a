"""Continual World's multi-task reference for an existing ``metarl-continual`` SAC run, without rerunning its stream.

    python scripts/cw_multitask_reference.py <run dir> --out <folder>

Reads ``<run dir>/config.yaml`` (the stream, agent, evaluation and seeds the run used), trains one SAC on all
the stream's tasks at once for the stream's total steps (:func:`metarl.continual.sac_runner.multitask_run`, the
job's ``multitask=true`` path) and writes ``multitask.json`` (average performance: the mean final success over
tasks, last-5 evaluations, 95 % bootstrap CI over seeds; wall time) and ``multitask.npz`` (the curves).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from metarl.continual import metrics as M
from metarl.continual.sac_runner import SACContinualRunner, multitask_run
from metarl.jobs.continual import build
from metarl.stats import bootstrap_ci


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    config = args.run / "config.yaml"
    if not config.is_file():
        parser.error(f"{config} does not exist (a metarl-continual run directory has one)")
    cfg = OmegaConf.to_container(OmegaConf.load(config), resolve=True)
    cfg["method"] = {"name": "finetune"}  # no switches happen, so the method does not matter
    stream, agent, method, run_cfg, switch = build(cfg)
    if switch is None:
        parser.error(f"{args.run} is not a SAC run (the multi-task reference is Continual World's, for SAC streams)")
    runner = SACContinualRunner(stream, agent, method, run_cfg, switch)
    out = multitask_run(runner, progress=True)
    steps, perf = out["eval_steps"], out["perf"]
    final = np.array([np.mean([M.last_k_mean(steps, seed[:, t], 0, steps[-1]) for t in range(seed.shape[1])])
                      for seed in perf])
    mean, low, high = bootstrap_ci(final, reps=M.BOOTSTRAP_REPS, confidence=M.CONFIDENCE)
    args.out.mkdir(parents=True, exist_ok=True)
    np.savez(args.out / "multitask.npz", eval_steps=steps, perf=perf, returns=out["returns"])
    record = {"stream": stream.id, "seeds": int(perf.shape[0]), "per_seed": final.tolist(),
              "average_performance": {"mean": mean, "ci_low": low, "ci_high": high},
              "peak_task_success": np.max(np.mean(perf, axis=0), axis=0).tolist(), "wall_time_s": out["wall_time_s"]}
    (args.out / "multitask.json").write_text(json.dumps(record, indent=1, default=float))
    print(f"multi-task reference average_performance: {mean:.3f} [{low:.3f}, {high:.3f}] "
          f"({perf.shape[0]} seeds, {out['wall_time_s'] / 60:.0f} min)")


if __name__ == "__main__":
    main()
