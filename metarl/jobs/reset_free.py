"""Job ``reset_free`` (``metarl-reset-free``): naive, forward-backward or RISC on an EARL-style task.

    metarl-reset-free task=four-rooms-v1 algorithm=risc seeds=5
    metarl-reset-free task=four-rooms-v1 algorithm=risc bootstrap=timeout_as_terminal seeds=5
    metarl-reset-free task=four-rooms-v1 algorithm=fbrl scale=ci seeds=2        # the test suite's budget

Writes into the run directory: ``config.yaml``, ``metrics.jsonl`` (one row per
evaluation period and seed: deployed success and return, interventions, phase
counts), ``summary.json`` (RISC's score — the mean deployed success of the last
five evaluations — per seed, with its mean and 95% bootstrap interval, the
continuing return per step, interventions, wall time) and ``deployed_success.png``.
Checkpoints every ``checkpoint_every`` periods; ``resume=true`` continues bit for bit.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from metarl.agents.dqn import DQNConfig
from metarl.agents.sac_config import SACConfig
from metarl.config import build_dataclass, check_choice, check_field, check_keys, plain, positive_int
from metarl.eval.report import plot_learning_curve
from metarl.io import tracking
from metarl.io.checkpoint import ESCheckpointer
from metarl.io.outputs import ProgressBar, jsonable, write_config
from metarl.io.progress import append_records, read_log, truncate_log
from metarl.jobs.registry import Job, register
from metarl.reset_free import benchmarks
from metarl.reset_free.config import ResetFreeConfig
from metarl.reset_free.runner import build_runner
from metarl.stats import bootstrap_ci

CHECKPOINTS, METRICS = "checkpoints", "metrics.jsonl"
PROTOCOL_KEYS = ("total_steps", "steps_per_intervention", "phase_step_limit", "eval_every", "eval_episodes",
                 "conservative_factor", "minimum_steps", "trajectory_proportion", "demos")
SCORE_EVALS = 5  # RISC's score: the mean of the last five deployed evaluations


def build(cfg: Any) -> tuple[benchmarks.EARLTask, ResetFreeConfig, DQNConfig | SACConfig]:
    """Config -> (task, resolved settings, agent settings), with one-line errors and nothing compiled."""
    cfg = plain(cfg)
    task = benchmarks.get(str(cfg.get("task")))
    scale = check_choice(cfg.get("scale", "full"), "scale", ("full", "ci"))
    protocol = {k: v for k, v in check_keys(cfg.get("protocol"), PROTOCOL_KEYS, "protocol").items() if v is not None}
    critic = check_keys(cfg.get("critic"), ("lr", "tau"), "critic")
    # each value checked under the name the user typed (protocol.eval_every, critic.lr), then the whole
    settings = {key: cfg.get(key, default) for key, default in (("algorithm", "risc"), ("bootstrap", "correct"),
                ("eval_epsilon", 0.0), ("goal_conditioned", True), ("seed", 0))}
    settings["seeds"] = positive_int(cfg.get("seeds", 1), "seeds")
    settings = {k: check_field(ResetFreeConfig, k, v, k) for k, v in settings.items()}
    settings.update({k: check_field(ResetFreeConfig, k, v, f"protocol.{k}") for k, v in protocol.items()})
    settings.update({f"critic_{k}": check_field(ResetFreeConfig, f"critic_{k}", v, f"critic.{k}")
                     for k, v in critic.items()})
    rf = build_dataclass(ResetFreeConfig, settings, "reset_free").resolved(task, ci=scale == "ci")
    configs = {"dqn": DQNConfig, "sac": SACConfig}
    if task.agent not in configs:
        raise ValueError(f"task {task.id} needs a {task.agent} agent, which metarl-reset-free does not drive yet")
    ci_agent = task.ci_agent_settings if scale == "ci" else {}
    agent = build_dataclass(configs[task.agent], {**task.agent_settings, **ci_agent, **(cfg.get("agent") or {})},
                            "agent")
    kept = min(agent.buffer_size, rf.total_steps)  # the runner's replay buffer
    if agent.batch_size > kept:
        raise ValueError(f"agent.batch_size={agent.batch_size} is larger than the replay buffer ({kept} transitions: "
                         "agent.buffer_size or the run's total_steps)")
    if agent.learning_starts >= rf.total_steps:
        raise ValueError(f"agent.learning_starts={agent.learning_starts} is not below the run's total_steps="
                         f"{rf.total_steps}: the agent would never learn")
    build_runner(task, rf, agent)  # what depends on the env (goal entries, demonstrator, action space); compiles nothing
    return task, rf, agent


def _rows(metrics: dict[str, np.ndarray], period: int) -> list[dict]:
    seeds = len(next(iter(metrics.values())))
    return [{"period": period, "seed": s, **{k: float(v[s]) for k, v in metrics.items()}} for s in range(seeds)]


def _history(rows: list[dict], key: str, seeds: int) -> np.ndarray:
    """``[seeds, periods]`` of ``key`` from the metrics log."""
    periods = max(r["period"] for r in rows) + 1
    out = np.full((seeds, periods), np.nan)
    for r in rows:
        out[r["seed"], r["period"]] = r[key]
    return out


def summarize(rows: list[dict], seeds: int) -> dict:
    success = _history(rows, "deployed_success", seeds)
    score = np.nanmean(success[:, -SCORE_EVALS:], axis=1)
    mean, low, high = bootstrap_ci(score)
    steps = _history(rows, "steps", seeds)[0, -1]
    reward = np.nansum(_history(rows, "task_reward", seeds), axis=1)
    c_mean, c_low, c_high = bootstrap_ci(reward / steps)
    return {
        "deployed_success": {"mean": mean, "ci_low": low, "ci_high": high, "per_seed": score.tolist(),
                             "n_seeds": seeds, "last_evaluations": SCORE_EVALS},
        "continuing_return_per_step": {"mean": c_mean, "ci_low": c_low, "ci_high": c_high},
        "interventions": float(np.nanmax(_history(rows, "interventions", seeds)[:, -1])),
        "steps": int(steps),
        "switches_per_seed": float(np.nanmean(np.nansum(_history(rows, "switches", seeds), axis=1))),
    }


def run(cfg: Any, run_dir: Path) -> dict[str, Any]:
    task, rf, agent = build(cfg)
    cfg = plain(cfg)
    run_dir = Path(run_dir)
    write_config(run_dir, cfg)
    every = positive_int(cfg.get("checkpoint_every", 10), "checkpoint_every")
    runner = build_runner(task, rf, agent)
    carry = runner.init_seeds()
    checkpointer = ESCheckpointer(run_dir / CHECKPOINTS, max_to_keep=2)
    done = 0
    bar = ProgressBar(runner.periods, f"{task.id} {rf.algorithm} x{rf.seeds}", unit="eval") \
        if cfg.get("progress", True) else None
    start = time.perf_counter()
    try:
        if cfg.get("resume") and checkpointer.latest_generation() is not None:
            done, carry, _ = checkpointer.restore(carry)
        truncate_log(run_dir / METRICS, done, key="period")  # rows past the checkpoint are redone
        tracking.restart_at(done * rf.eval_every)  # tracker steps are env steps
        while done < runner.periods:
            carry, metrics = runner.period(carry)
            metrics = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
            rows = _rows(metrics, done)
            append_records(run_dir / METRICS, rows)
            means = {k: float(np.mean(np.asarray(v, np.float64))) for k, v in metrics.items()}
            tracking.log("reset_free", int(means["steps"]), means)  # the mean over seeds
            done += 1
            if done % every == 0 or done == runner.periods:
                checkpointer.save(done, carry, {"periods_done": done})
            if bar:
                bar.callback(done)
    finally:
        checkpointer.close()
        if bar:
            bar.close()
    seconds = time.perf_counter() - start
    rows = read_log(run_dir / METRICS)
    summary = {"task": task.id, "algorithm": rf.algorithm, "bootstrap": rf.bootstrap, **summarize(rows, rf.seeds),
               "wall_time_s": seconds, "settings": dataclasses.asdict(rf), "agent": dataclasses.asdict(agent)}
    (run_dir / "summary.json").write_text(json.dumps(jsonable(summary), indent=1))
    tracking.log_summary({k: summary[k] for k in ("deployed_success", "interventions", "wall_time_s")})
    steps = _history(rows, "steps", rf.seeds)[0]
    plot_learning_curve(run_dir / "deployed_success.png", steps,
                        {f"{rf.algorithm} ({rf.bootstrap})": _history(rows, "deployed_success", rf.seeds)},
                        ylabel="deployed success", title=f"{task.id}: {rf.seeds} seeds")
    return summary


JOB = register(Job("reset_free", run, "reset_free", "naive, forward-backward or RISC on an EARL-style task",
                   sections=("task", "algorithm", "bootstrap", "scale", "protocol", "goal_conditioned", "eval_epsilon",
                             "agent", "critic", "seeds", "seed", "checkpoint_every", "resume", "allow_changes",
                             "progress", "run_dir"),
                   headline="deployed_success.mean"))
