"""Job ``meta_train_optimizer``: evolve an OPEN-style learned optimizer with ES.

    metarl-meta-train objective=ppo optimizer=learned meta.generations=20 env.name=[CartPole-v1]

Every candidate trains PPO with a fixed drift (``objective``, PPO-clip by
default) and the candidate optimizer, on every env of ``env.name`` with
``env.overrides``; fitness = return / Adam-PPO return (measured once,
``reference_returns.json``). Writes ``meta_log.jsonl``, ``checkpoints/``,
``meta_curve.png`` and ``learned_optimizer.npz`` (load with
:func:`metarl.optimizers.load_learned_optimizer`); with ``evaluate.enabled``
the summary holds the learned optimizer's and Adam's returns on fresh seeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax

from metarl import distributed
from metarl.jobs.registry import Job, register
from metarl.meta.optimizer_fitness import evaluate_returns, fixed_drift, load_or_build, make_fitness
from metarl.meta.plots import plot_meta_curve
from metarl.meta.ppo_meta import PPOMetaSettings, artifact_extra, evolve
from metarl.meta.settings import section
from metarl.meta.trainer import history_summary
from metarl.optimizers.io import save_learned_optimizer

ARTIFACT = "learned_optimizer.npz"
SECTIONS = ("cpu_devices", "distributed", "optimizer", "objective", "meta", "env", "inner", "fitness", "evaluate", "seed",
            "resume", "allow_changes", "run_dir", "progress_bar")


def run(cfg: Any, run_dir: Path) -> dict:
    """Meta-train ``cfg.optimizer`` (``name: learned``) on ``cfg.env`` with ``cfg.meta``'s ES; returns a summary."""
    started, run_dir = time.perf_counter(), Path(run_dir)
    settings = PPOMetaSettings.from_config(cfg)
    ppo_config, fitness_cfg = settings.ppo, settings.fitness
    overrides, env_names = settings.overrides, settings.env_names
    drift = fixed_drift(section(cfg, "objective"), ppo_config.clip_eps)
    optimizer, loaded_mean = load_or_build(section(cfg, "optimizer"))

    # Fitness = return / Adam-PPO return (OPEN's normalisation), measured once.
    result, refs = evolve(
        settings, run_dir,
        lambda refs: make_fitness(optimizer, env_names, ppo_config, fitness_cfg, refs, drift, overrides,
                                  settings.task_sets),
        lambda key: optimizer.init_meta(key) if loaded_mean is None else loaded_mean, optimizer.name,
        {"optimizer": optimizer.config},
    )
    extra = artifact_extra(settings, cfg, refs)
    artifact = save_learned_optimizer(run_dir / ARTIFACT, optimizer, result.mean, extra=extra)
    plot_meta_curve(result.history, run_dir / "meta_curve.png")
    summary = {
        "run_dir": str(run_dir),
        "artifact": str(artifact),
        "optimizer": optimizer.name,
        "envs": env_names,
        "generations": settings.trainer.generations,
        "reference_returns": refs,
        **history_summary(result.history),
        "train_seconds": time.perf_counter() - started,
    }
    evaluate = cfg.get("evaluate")
    if evaluate is not None and evaluate.enabled and distributed.is_primary():  # process 0 evaluates
        key = jax.random.PRNGKey(settings.seed + 2)
        seeds, frac = int(evaluate.seeds), fitness_cfg.final_fraction
        tasks = settings.task_sets  # with env.task_sets: each seed on its own held-out task
        summary["eval_learned"] = evaluate_returns(optimizer, result.mean, env_names, ppo_config, seeds, key, frac,
                                                   drift, overrides, tasks)
        summary["eval_adam"] = evaluate_returns(None, None, env_names, ppo_config, seeds, key, frac, drift, overrides,
                                                tasks)
    return summary


register(Job(
    name="meta_train_optimizer",
    run=run,
    config_name="meta_train",
    description="evolve an OPEN-style learned optimizer with ES (objective=ppo optimizer=learned)",
    writes=("learned_optimizer",),
    sections=SECTIONS,
    headline="last_fitness_mean",
))
