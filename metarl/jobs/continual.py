"""Job ``continual`` (``metarl-continual``): PPO or SAC across a task stream, Continual World metrics.

    metarl-continual benchmark=ccartpole5 method=ewc seeds=3
    metarl-continual benchmark=cw10 seeds=3 benchmark.steps_per_task=20000   # SAC, Continual World

The benchmark names its agent (``algorithm: ppo`` by default, ``sac`` for the
Continual World streams, whose ``switch`` block says what a task switch resets).

Writes into the run directory: ``config.yaml`` (resolved), ``results.npz``
(eval steps, per-task returns and scores ``[seeds, evals, tasks]``, the
reference runs, plasticity diagnostics), ``metrics.json`` (Continual World
metrics per seed, bootstrap/IQM summary, intervention log, compile counts)
and ``task_curves.png``. A bad configuration fails before anything compiles.
SAC streams with ``checkpoint_every=N`` save orbax checkpoints every N
evaluation chunks in ``checkpoints/``; ``resume=true`` continues the stream
from the newest one bit for bit (the reference and multi-task runs are redone).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from metarl.agents.ppo import PPOConfig
from metarl.agents.sac import SACConfig
from metarl.config import as_int, build_dataclass, check_bool, check_field, check_keys, check_number, plain, positive_int
from metarl.continual import metrics as M
from metarl.continual.methods import MethodConfig
from metarl.continual.runner import ContinualRunner, RunConfig, evaluate_results, reference_runs
from metarl.continual.sac_runner import (SAC_METHODS, SACContinualRunner, StreamCheckpoints, SwitchConfig,
                                        multitask_average_performance, multitask_run, sac_reference_runs)
from metarl.continual.streams import from_spec, get_stream
from metarl.io import tracking
from metarl.io.outputs import jsonable, write_config
from metarl.jobs.registry import Job, register

CHECKPOINTS = "checkpoints"
BENCHMARK_KEYS = ("stream", "spec", "steps_per_task", "eval", "agent", "algorithm", "switch")
ALGORITHMS = {"ppo": PPOConfig, "sac": SACConfig}
# eval.<key> (the benchmark's protocol, then the user's overrides) -> RunConfig field
EVAL_FIELDS = {
    "every_steps": "eval_every_steps",
    "episodes": "eval_episodes",
    "max_steps": "eval_max_steps",
    "greedy": "eval_greedy",
    "obs_buffer_updates": "obs_buffer_updates",
    "replay_per_task": "replay_per_task",
}


def build(cfg: Any) -> tuple[Any, Any, MethodConfig, RunConfig, SwitchConfig | None]:
    """Config -> (stream, agent, method, run, switch) with one-line errors; ``switch`` is None for PPO."""
    cfg = plain(cfg)
    bench = check_keys(cfg.get("benchmark"), BENCHMARK_KEYS, "benchmark")
    if bench.get("spec"):  # an inline stream spec (data), e.g. for a quick experiment
        stream = from_spec(dict(bench["spec"]))
    elif bench.get("stream"):
        steps = bench.get("steps_per_task")
        steps = None if steps is None else positive_int(steps, "benchmark.steps_per_task")
        stream = get_stream(str(bench["stream"]), steps)
    else:
        raise ValueError("benchmark.stream (a registered name) or benchmark.spec is required (e.g. benchmark=ccartpole5)")
    algorithm = bench.get("algorithm") or "ppo"
    if algorithm not in ALGORITHMS:
        raise ValueError(f"benchmark.algorithm={algorithm!r} is unknown; expected one of {sorted(ALGORITHMS)}")
    agent = build_dataclass(ALGORITHMS[algorithm], {**(bench.get("agent") or {}), **(cfg.get("agent") or {})}, "agent")
    agent.validate()
    method = build_dataclass(MethodConfig, cfg.get("method"), "method")
    method.validate()
    switch = None
    if algorithm == "sac":
        if method.name not in SAC_METHODS:
            raise ValueError(f"method={method.name} is not available with SAC yet (benchmark {bench.get('stream')} "
                             f"runs SAC; SAC has {', '.join(SAC_METHODS)}; the PPO benchmarks have the other methods)")
        chosen = {k: v for k, v in (cfg.get("switch") or {}).items() if v is not None}
        switch = build_dataclass(SwitchConfig, {**(bench.get("switch") or {}), **chosen}, "switch")
    elif any(v is not None for v in (cfg.get("switch") or {}).values()):
        raise ValueError("switch settings apply to SAC benchmarks only (benchmark.algorithm=sac)")
    else:
        method.build().check_agent(agent)
    protocol = {**check_keys(bench.get("eval"), EVAL_FIELDS, "benchmark.eval"),
                **check_keys(cfg.get("eval"), EVAL_FIELDS, "eval")}
    run_values = {EVAL_FIELDS[k]: check_field(RunConfig, EVAL_FIELDS[k], v, f"eval.{k}") for k, v in protocol.items()}
    run_values["seeds"] = positive_int(cfg.get("seeds", 1), "seeds")
    run_values["seed"] = check_number(cfg.get("seed", 0), "seed", integer=True)
    for flag in ("reference", "progress", "multitask"):
        check_bool(cfg.get(flag, False), flag)
    if cfg.get("multitask") and algorithm != "sac":
        raise ValueError("multitask=true (the multi-task reference run) needs a SAC benchmark (benchmark=cw10, cw20)")
    every = as_int(cfg.get("checkpoint_every", 0), "checkpoint_every")
    if every < 0:
        raise ValueError(f"checkpoint_every must be >= 0 evaluation chunks (0: no checkpoints), got {every}")
    if every and algorithm != "sac":
        raise ValueError("checkpoint_every applies to SAC streams (benchmark=cw10, cw20); PPO streams run without "
                         "checkpoints")
    check_bool(cfg.get("resume", False), "resume")
    if cfg.get("resume") and not every:
        raise ValueError("resume=true needs checkpoint_every > 0 (the checkpoints a SAC stream saves)")
    return stream, agent, method, RunConfig(**run_values), switch


def log_evaluations(results: dict, task_names: tuple[str, ...]) -> None:
    """Each evaluation's scores, returns and diagnostics (means over seeds) to the tracker, at its env step.

    The stream runs as compiled chunks (SAC: one program), so the host has
    the evaluations only at the end; they are logged then.
    """
    perf, returns = np.asarray(results["perf"], np.float64), np.asarray(results["returns"], np.float64)
    diagnostics = {k: np.asarray(v, np.float64) for k, v in results["diagnostics"].items() if np.ndim(v) == 2}
    for i, step in enumerate(np.asarray(results["eval_steps"])):
        values = {"perf_mean": perf[:, i].mean()}
        for t, name in enumerate(task_names):
            values[f"perf/{name}"] = perf[:, i, t].mean()
            values[f"return/{name}"] = returns[:, i, t].mean()
        values.update({f"diag/{k}": v[:, i].mean() for k, v in diagnostics.items()})  # [seeds, evals] only
        tracking.log("continual", int(step), values)


def run(cfg: Any, run_dir: Path) -> dict[str, Any]:
    """Check the config, run the stream (and the from-scratch references), write the run directory."""
    stream, agent, method, run_cfg, switch = build(cfg)  # fails before compiling anything
    cfg = plain(cfg)
    run_dir = Path(run_dir)
    write_config(run_dir, cfg)
    progress = bool(cfg.get("progress", False))
    reference = cfg.get("reference", True)
    if switch is not None:
        runner = SACContinualRunner(stream, agent, method, run_cfg, switch)
        every = int(cfg.get("checkpoint_every") or 0)
        checkpoints = StreamCheckpoints(run_dir / CHECKPOINTS, every, bool(cfg.get("resume"))) if every else None
        try:
            results = runner.run(progress=progress, checkpoints=checkpoints)
        finally:
            if checkpoints is not None:
                checkpoints.close()
        ref = sac_reference_runs(runner, progress) if reference else None
        multitask = multitask_run(runner, progress) if cfg.get("multitask", False) else None
    else:
        runner = ContinualRunner(stream, agent, method, run_cfg)
        results = runner.run(progress=progress)
        ref = reference_runs(stream, agent, run_cfg, runner, progress) if reference else None
        multitask = None
    log_evaluations(results, stream.task_names)
    evaluation = evaluate_results(results, ref)
    arrays = {
        "eval_steps": results["eval_steps"],
        "returns": results["returns"],
        "perf": results["perf"],
        **{f"diag/{k}": v for k, v in results["diagnostics"].items()},
    }
    if ref is not None:
        arrays.update(ref_steps=ref[0], ref_perf=ref[1])
    if multitask is not None:
        arrays.update(mt_steps=multitask["eval_steps"], mt_perf=multitask["perf"])
    np.savez(run_dir / "results.npz", **arrays)
    record = {
        "stream": stream.id,
        "stream_spec": stream.spec,
        "segments_run": results["segments"],
        "method": dataclasses.asdict(method),
        "algorithm": "sac" if switch is not None else "ppo",
        "agent": dataclasses.asdict(runner.agent_cfg),
        "switch": None if switch is None else dataclasses.asdict(runner.switch_cfg),  # as run (replay keeps the buffer)
        "metrics": evaluation["summary"],
        "per_seed": evaluation["per_seed"],
        "interventions": results["interventions"],
        "compile_counts": runner.compile_counts(),
        "wall_time_s": results["wall_time_s"],
        "env_steps_per_s": results.get("env_steps_per_s"),
    }
    if multitask is not None:  # the multi-task reference's average performance: mean final score over tasks
        final, (mean, low, high) = multitask_average_performance(multitask["eval_steps"], multitask["perf"])
        record["multitask"] = {"average_performance": {"mean": mean, "ci_low": low, "ci_high": high,
                                                       "n_seeds": len(final)},
                               "wall_time_s": multitask["wall_time_s"]}
    (run_dir / "metrics.json").write_text(json.dumps(jsonable(record), indent=1))
    # the tracker's summary: the record's numbers, not the configs it also holds
    tracking.log_summary({k: record[k] for k in ("metrics", "multitask", "wall_time_s", "env_steps_per_s")
                          if record.get(k) is not None})
    M.plot_task_curves(results["eval_steps"], results["perf"], results["segments"], stream.task_names,
                       str(run_dir / "task_curves.png"))
    for name, m in record["metrics"].items():
        print(f"{name}: {m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]")
    if "multitask" in record:
        m = record["multitask"]["average_performance"]
        print(f"multi-task reference average_performance: {m['mean']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]")
    print(f"run directory: {run_dir}")
    return record


JOB = register(Job("continual", run, "continual", "PPO or SAC across a task stream; Continual World metrics",
                   sections=("benchmark", "method", "seeds", "seed", "reference", "multitask", "progress", "eval",
                             "agent", "switch", "checkpoint_every", "resume", "allow_changes", "out_dir"),
                   headline="metrics.average_performance.mean"))
