"""Job ``train`` (``metarl-train``): PPO on one environment over several vmapped seeds.

    metarl-train env=gridworld/dense seeds=8 agent.total_timesteps=1e6
    metarl-train env=pendulum optimizer=sgd agent.anneal_lr=false

Writes into the run directory: ``config.yaml`` (resolved),
``metrics.jsonl`` (one row per seed per update), ``learning_curve.png``
(mean and 95% bootstrap interval over seeds against env steps),
``checkpoint/`` (orbax: final network parameters of every seed) and
``policy_checkpoint.json`` (its artifact header: kind, PPO config and the
resolved config of the run). A bad configuration fails before anything compiles.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

import envs
from metarl.agents.ppo import PPOConfig, make_train
from metarl.config import as_int, build_dataclass, env_spec, plain, positive_int
from metarl.eval.report import plot_learning_curve
from metarl.io.artifacts import save_header
from metarl.io.outputs import ProgressBar, save_checkpoint, summarize_final, write_config, write_metrics
from metarl.jobs.registry import Job, register

PROGRAM = "metarl-train"


def build_optimizer(cfg: Any) -> tuple[Any, Any]:
    """``(optimizer or None, optimizer_params or None)`` from the ``optimizer`` group."""
    cfg = plain(cfg)
    if not cfg:
        return None, None
    from metarl.optimizers import build_optimizer as build, load_learned_optimizer

    if cfg.get("name") == "learned" and cfg.get("load"):
        optimizer, meta_params, _ = load_learned_optimizer(cfg["load"])
        return optimizer, meta_params
    return build(cfg), None


def run(cfg: Any, run_dir: Path) -> dict:
    """Validate everything, train, write outputs; returns a small summary."""
    seeds = positive_int(cfg.get("seeds", 1), "seeds")
    seed = as_int(cfg.get("seed", 0), "seed")
    env_name, env_overrides = env_spec(cfg.env)
    env, env_params = envs.make(env_name, **env_overrides)
    config = build_dataclass(PPOConfig, cfg.agent, "agent")
    config.validate(env, env_params)
    optimizer, optimizer_params = build_optimizer(cfg.get("optimizer"))
    write_config(run_dir, cfg)

    keys = jax.random.split(jax.random.key(seed), seeds)
    bar = ProgressBar(config.num_updates, description=f"{env_name} x{seeds}") if cfg.get("progress", True) else None
    train = make_train(config, env, env_params, optimizer=optimizer, progress_callback=bar.callback if bar else None)
    batched = jax.jit(jax.vmap(train, in_axes=(0, None, None)))
    start = time.perf_counter()
    try:
        state, metrics = batched(keys, None, optimizer_params)
        metrics = jax.device_get(metrics)
    finally:
        if bar:
            bar.close()
    seconds = time.perf_counter() - start

    write_metrics(run_dir, metrics)
    steps = np.asarray(metrics["timesteps"][0])
    plot_learning_curve(
        run_dir / "learning_curve.png",
        steps,
        {"PPO": metrics["episode_return"]},
        title=f"{env_name}: {seeds} seed{'s' if seeds > 1 else ''}",
    )
    checkpoint = save_checkpoint(run_dir / "checkpoint", {"params": state.params, "obs_rms": state.obs_rms})
    save_header(run_dir / "policy_checkpoint.json", kind="policy_checkpoint", name="ppo",
                config=plain(dataclasses.asdict(config)),
                extra={"checkpoint": checkpoint.name, "seeds": seeds, "resolved_config": plain(cfg)})
    final = summarize_final(metrics)
    total_steps = int(steps[-1]) * seeds
    print(
        f"{PROGRAM}: {env_name}: final return {final['mean']:.2f} (seeds {final['min']:.2f}..{final['max']:.2f}); "
        f"{total_steps:,} steps in {seconds:.1f}s incl. compile; wrote {run_dir}"
    )
    return {"final_return": final, "seconds": seconds, "run_dir": str(run_dir)}


JOB = register(Job("train", run, "train", "PPO on one environment over several vmapped seeds",
                   writes=("policy_checkpoint",), sections=("agent", "optimizer", "env", "seeds", "seed", "progress")))
