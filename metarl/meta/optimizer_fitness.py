"""Meta-training a learned optimizer with the project's ES trainer.

``make_fitness`` is the optimizer counterpart of
:func:`metarl.meta.fitness.make_inner_fitness`: every candidate trains PPO
(fixed drift, PPO-clip by default) with ``optimizer.transform(candidate)``
and is scored by its return divided by the Adam-PPO reference return (as
OPEN). ``run(cfg, run_dir)`` is the whole ``metarl-meta-train optimizer=learned``
job for a resolved meta-train config; it writes ``learned_optimizer.npz``
(load with :func:`metarl.optimizers.load_learned_optimizer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax

import envs
from metarl.agents.ppo import PPOConfig, make_train
from metarl.meta.fitness import FitnessConfig, as_env_list, make_normalised_fitness, score_returns, seed_keys
from metarl.optimizers.io import load_learned_optimizer, save_learned_optimizer
from metarl.optimizers.learned import LearnedOptimizer

ARTIFACT = "learned_optimizer.npz"


def make_fitness(
    optimizer: LearnedOptimizer,
    env_names: Sequence[str],
    ppo_config: PPOConfig,
    config: FitnessConfig,
    reference_returns: dict[str, float],
    drift: Any = None,
) -> Callable[[jax.Array, Any], jax.Array]:
    """``fitness(key, meta_params_batch) -> [population]`` of learned-optimizer candidates (maximise)."""
    trains = [make_train(ppo_config, *envs.make(name), drift=drift, optimizer=optimizer) for name in env_names]
    return make_normalised_fitness(trains, env_names, config, reference_returns, lambda mp: (None, mp))


def evaluate_returns(
    optimizer: Any, meta_params: Any, env_names: Sequence[str], ppo_config: PPOConfig, seeds: int,
    key: jax.Array, final_fraction: float, drift: Any = None,
) -> dict[str, list[float]]:
    """Final return per fresh seed and env; ``optimizer=None`` is PPO's default Adam."""
    out = {}
    for index, name in enumerate(env_names):
        train = make_train(ppo_config, *envs.make(name), drift=drift, optimizer=optimizer)
        keys = seed_keys(key, index, seeds)
        returns = jax.jit(jax.vmap(lambda k: train(k, None, meta_params)[1]["episode_return"]))(keys)
        out[name] = [float(x) for x in score_returns(returns, "final", final_fraction)]
    return out


def _fixed_drift(objective_cfg: dict, clip_eps: float) -> Any:
    from metarl.objectives import make_objective

    cfg = dict(objective_cfg or {"name": "ppo"})
    name = cfg.pop("name", "ppo")
    if name in ("lpo", "ta_lpo"):
        raise ValueError(f"meta-training an optimizer needs a fixed objective (ppo, dpo), got {name!r}")
    if name == "ppo":
        cfg.setdefault("clip_eps", clip_eps)
    return make_objective(name, **cfg)


def _load_or_build(optimizer_cfg: dict) -> tuple[LearnedOptimizer, Any | None]:
    """The optimizer to evolve and, when ``load`` names a file, the mean to start from."""
    from metarl.optimizers import build_optimizer

    if optimizer_cfg.get("load"):
        optimizer, meta_params, _ = load_learned_optimizer(optimizer_cfg["load"])
        return optimizer, meta_params
    optimizer = build_optimizer(optimizer_cfg)
    if not isinstance(optimizer, LearnedOptimizer):
        raise ValueError(f"optimizer {optimizer_cfg.get('name')!r} has no meta-parameters to train; use optimizer=learned")
    return optimizer, None


def run(cfg: Any, run_dir: Path) -> dict:
    """Meta-train ``cfg.optimizer`` (``name: learned``) on ``cfg.env`` with ``cfg.meta``'s ES.

    Uses the same config sections as the objective job: ``inner`` (PPO),
    ``meta`` (ES + trainer), ``fitness``, ``evaluate``, ``objective`` (a fixed
    drift, default PPO-clip), ``seed``, ``resume``.
    """
    from metarl.meta.es import EvolutionStrategy
    from metarl.meta.trainer import TrainerConfig, run_meta_training
    from metarl.jobs.meta_train import _plain, plot_meta_curve, reference_returns, split_meta_config

    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ppo_config = PPOConfig(**_plain(cfg.inner))
    es_config, trainer_kwargs = split_meta_config(_plain(cfg.meta))
    trainer_config = TrainerConfig(show_progress=bool(cfg.progress_bar), **trainer_kwargs)
    fitness_cfg = FitnessConfig(**_plain(cfg.fitness))
    env_names = as_env_list(_plain(cfg.env))
    drift = _fixed_drift(_plain(cfg.get("objective")), ppo_config.clip_eps)
    optimizer, loaded_mean = _load_or_build(_plain(cfg.optimizer))
    seed, resume = int(cfg.seed), bool(cfg.resume)

    # Fitness = return / Adam-PPO return (OPEN's normalisation), measured once.
    refs = reference_returns(run_dir, env_names, ppo_config, fitness_cfg, seed, resume)
    fitness = make_fitness(optimizer, env_names, ppo_config, fitness_cfg, refs, drift=drift)
    init_key, es_key = jax.random.split(jax.random.PRNGKey(seed))
    init_mean = optimizer.init_meta(init_key) if loaded_mean is None else loaded_mean
    es = EvolutionStrategy(es_config, init_mean)
    metadata = {"optimizer": optimizer.config, "envs": env_names, "reference_returns": refs, "seed": seed}
    result = run_meta_training(
        es, fitness, init_mean, es_key, trainer_config, run_dir, resume=resume, metadata=metadata,
        description=f"ES {es_config.evosax_name} {optimizer.name}",
    )
    extra = {"generations": trainer_config.generations, "envs": env_names, "reference_returns": refs,
             "seed": seed, "strategy": es_config.evosax_name, "inner": _plain(cfg.inner)}
    artifact = save_learned_optimizer(run_dir / ARTIFACT, optimizer, result.mean, extra=extra)
    plot_meta_curve(result.history, run_dir / "meta_curve.png")
    history = result.history
    summary = {
        "run_dir": str(run_dir),
        "artifact": str(artifact),
        "optimizer": optimizer.name,
        "envs": env_names,
        "generations": trainer_config.generations,
        "reference_returns": refs,
        "first_fitness_mean": history[0]["fitness_mean"],
        "last_fitness_mean": history[-1]["fitness_mean"],
        "best_fitness": max(r["fitness_max"] for r in history),
        "train_seconds": time.perf_counter() - started,
    }
    evaluate = cfg.get("evaluate")
    if evaluate is not None and evaluate.enabled:
        key = jax.random.PRNGKey(seed + 2)
        seeds, frac = int(evaluate.seeds), fitness_cfg.final_fraction
        summary["eval_learned"] = evaluate_returns(optimizer, result.mean, env_names, ppo_config, seeds, key, frac, drift)
        summary["eval_adam"] = evaluate_returns(None, None, env_names, ppo_config, seeds, key, frac, drift)
    return summary
