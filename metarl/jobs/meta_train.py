"""metarl-meta-train: evolve a learned PPO objective (LPO / TA-LPO) with ES.

    metarl-meta-train                                  # main job: LPO on CartPole-v1, then report
    metarl-meta-train meta=snes objective=ta_lpo meta.generations=50 env=[CartPole-v1,Acrobot-v1]
    metarl-meta-train resume=true run_dir=outputs/meta_train/<run>
    metarl-meta-train objective=lpg teacher=groove env=gridworld/all   # LPG rule (metarl.meta.lpg_es)

The run directory gets ``reference_returns.json`` (PPO's return per env,
measured once), ``meta_log.jsonl``, ``checkpoints/`` (orbax, every
``meta.checkpoint_every`` generations, plus ``final_objective.npz``),
``learned_objective.npz`` and, with ``evaluate.enabled``, the evaluation
files, ``meta_curve.png`` and ``report.md``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import jax

from metarl.agents.ppo import PPOConfig
from metarl.io.artifacts import save_objective
from metarl.config import cli_errors
from metarl.meta.es import ESConfig, EvolutionStrategy
from metarl.meta.fitness import (
    FitnessConfig,
    as_env_list,
    env_overrides,
    make_inner_fitness,
    measure_reference_returns,
)
from metarl.meta.trainer import MetaTrainResult, TrainerConfig, run_meta_training
from metarl.objectives import make_objective, objective_config

TRAINER_KEYS = ("generations", "checkpoint_every", "chunk_size", "shard")
LEARNED_OBJECTIVES = ("lpo", "ta_lpo")
RULE_OBJECTIVES = ("lpg", "ta_lpg")  # metarl.meta.lpg_es


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def build_objective(objective_cfg: dict, ppo_config: PPOConfig) -> Any:
    cfg = dict(objective_cfg)
    name = cfg.pop("name", None)
    if name not in LEARNED_OBJECTIVES:
        raise ValueError(f"objective.name must be one of {LEARNED_OBJECTIVES} for meta-training, got {name!r}")
    if name == "ta_lpo" and cfg.get("use_log_lifetime"):
        cfg.setdefault("lifetime", ppo_config.num_updates)
    return make_objective(name, **cfg)


def split_meta_config(meta_cfg: dict) -> tuple[ESConfig, dict]:
    meta_cfg = dict(meta_cfg)
    trainer = {k: meta_cfg.pop(k) for k in TRAINER_KEYS if k in meta_cfg}
    known = set(ESConfig.__dataclass_fields__)
    unknown = sorted(set(meta_cfg) - known)
    if unknown:
        raise ValueError(f"unknown meta option {unknown[0]!r} (valid: {', '.join(sorted(known | set(TRAINER_KEYS)))})")
    return ESConfig(**meta_cfg), trainer


def _write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def reference_returns(
    run_dir: Path, env_names: list[str], ppo_config: PPOConfig, fitness_cfg: FitnessConfig, seed: int, resume: bool,
    overrides: dict | None = None,
) -> dict[str, float]:
    """PPO's score per env: measured once per run and stored, reused on resume."""
    path = run_dir / "reference_returns.json"
    if resume and path.is_file():
        stored = json.loads(path.read_text())
        if sorted(stored["returns"]) != sorted(env_names):
            raise ValueError(f"resume: {path} has envs {sorted(stored['returns'])}, this run has {sorted(env_names)}")
        return stored["returns"]
    returns = measure_reference_returns(env_names, ppo_config, fitness_cfg, jax.random.PRNGKey(seed + 1), overrides)
    _write_json_atomic(path, {"returns": returns, "seeds": fitness_cfg.reference_seeds, "reduce": fitness_cfg.reduce})
    return returns


def plot_meta_curve(history: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    generations = [r["generation"] for r in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(generations, [r["fitness_mean"] for r in history], label="population mean")
    ax.plot(generations, [r["fitness_max"] for r in history], label="population best")
    ax.axhline(1.0, color="gray", ls="--", lw=0.8, label="PPO reference")
    ax.set(xlabel="generation", ylabel="fitness (return / PPO return)", title="ES meta-training")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(run_dir: Path, summary: dict, table_md: str) -> Path:
    lines = [
        f"# Meta-training report: {summary['objective']} on {', '.join(summary['envs'])}",
        "",
        f"- ES: {summary['strategy']}, population {summary['population_size']}, "
        f"{summary['generations']} generations, sigma {summary['sigma']}, lr {summary['learning_rate']}",
        f"- Inner PPO: {summary['inner_timesteps']} steps ({summary['inner_updates']} updates) per run, "
        f"{summary['fitness_seeds']} seeds per candidate, fitness = {summary['reduce']} return / PPO reference",
        f"- PPO reference return: {summary['reference_returns']}",
        f"- Fitness of the population mean, first -> last generation: "
        f"{summary['first_fitness_mean']:.3f} -> {summary['last_fitness_mean']:.3f} "
        f"(best candidate seen {summary['best_fitness']:.3f}); non-finite fitness values: {summary['nonfinite']}",
        f"- Meta-training wall time {summary['train_seconds']:.0f} s; evaluation {summary['eval_seconds']:.0f} s",
        "",
        f"## Evaluation ({summary['eval_seeds']} fresh seeds, final return = last 10% of updates)",
        "",
        table_md,
        "",
        "IQM = interquartile mean over seeds; 95% CI = stratified bootstrap (rliable).",
        "",
        "## Plots",
        "",
        "![ES fitness over generations](meta_curve.png)",
        "",
        "![Learning curves](learning_curves.png)",
        "",
        "![Drift over (r, A)](drift_heatmap.png)",
        "",
        "Files: `learned_objective.npz` (load with `metarl.io.artifacts.load_objective`), `meta_log.jsonl`, "
        "`per_seed_returns.csv`, `aggregate.json`, `checkpoints/`.",
    ]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(cfg: Any, run_dir: Path) -> dict:
    """The whole job for a resolved config; returns a summary dict."""
    optimizer_cfg = cfg.get("optimizer")
    if optimizer_cfg is not None and optimizer_cfg.get("name") == "learned":
        # objective=ppo optimizer=learned: evolve the optimizer, not the drift
        from metarl.meta.optimizer_fitness import run as run_learned_optimizer

        return run_learned_optimizer(cfg, run_dir)
    objective_cfg = cfg.get("objective")
    if objective_cfg is not None and objective_cfg.get("name") == "lpg_mg":
        # objective=lpg_mg: a Learned Policy Gradient rule trained by meta-gradients
        from metarl.meta.lpg_meta_gradient import run_from_config

        return run_from_config(cfg, run_dir)
    if objective_cfg is not None and objective_cfg.get("name") in RULE_OBJECTIVES:
        # objective=lpg|ta_lpg: evolve a Learned Policy Gradient rule on levels from cfg.teacher
        from metarl.meta.lpg_es import run as run_lpg

        return run_lpg(cfg, run_dir)
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    ppo_config = PPOConfig(**_plain(cfg.inner))
    es_config, trainer_kwargs = split_meta_config(_plain(cfg.meta))
    trainer_config = TrainerConfig(show_progress=bool(cfg.progress_bar), **trainer_kwargs)
    fitness_cfg = FitnessConfig(**_plain(cfg.fitness))
    env_names = as_env_list(_plain(cfg.env))
    overrides = env_overrides(_plain(cfg.env))
    objective = build_objective(_plain(cfg.objective), ppo_config)
    seed = int(cfg.seed)
    resume = bool(cfg.resume)

    refs = reference_returns(run_dir, env_names, ppo_config, fitness_cfg, seed, resume, overrides)
    fitness = make_inner_fitness(objective, env_names, ppo_config, fitness_cfg, refs, overrides)
    key = jax.random.PRNGKey(seed)
    init_key, es_key = jax.random.split(key)
    init_mean = objective.init(init_key)
    es = EvolutionStrategy(es_config, init_mean)
    metadata = {
        "objective": {"name": objective.name, "config": objective_config(objective)},
        "envs": env_names,
        "env_overrides": overrides,
        "reference_returns": refs,
        "seed": seed,
    }
    result: MetaTrainResult = run_meta_training(
        es, fitness, init_mean, es_key, trainer_config, run_dir, resume=resume, metadata=metadata,
        description=f"ES {es_config.evosax_name} {objective.name}",
    )
    train_seconds = time.perf_counter() - started
    extra = {"generations": trainer_config.generations, "envs": env_names, "reference_returns": refs, "seed": seed,
             "strategy": es_config.evosax_name, "inner": _plain(cfg.inner)}
    artifact = save_objective(run_dir / "learned_objective.npz", objective, result.mean, extra=extra)
    save_objective(run_dir / "checkpoints" / "final_objective.npz", objective, result.mean, extra=extra)
    plot_meta_curve(result.history, run_dir / "meta_curve.png")

    history = result.history
    summary = {
        "run_dir": str(run_dir),
        "artifact": str(artifact),
        "objective": objective.name,
        "envs": env_names,
        "strategy": es_config.evosax_name,
        "population_size": es_config.population_size,
        "generations": trainer_config.generations,
        "sigma": es_config.sigma,
        "learning_rate": es_config.learning_rate,
        "inner_timesteps": ppo_config.total_timesteps,
        "inner_updates": ppo_config.num_updates,
        "fitness_seeds": fitness_cfg.num_seeds,
        "reduce": fitness_cfg.reduce,
        "reference_returns": {k: round(v, 2) for k, v in refs.items()},
        "first_fitness_mean": history[0]["fitness_mean"],
        "last_fitness_mean": history[-1]["fitness_mean"],
        "best_fitness": max(r["fitness_max"] for r in history),
        "nonfinite": sum(r["num_nonfinite"] for r in history),
        "train_seconds": train_seconds,
        "eval_seconds": 0.0,
        "eval_seeds": int(cfg.evaluate.seeds),
        "final_mean": result.mean,
    }
    if cfg.evaluate.enabled:
        from metarl.jobs.evaluate import ObjectiveSpec, evaluate_objectives, resolve_objective, write_results

        eval_started = time.perf_counter()
        learned = ObjectiveSpec(f"{objective.name.upper()} (learned)", objective, result.mean)
        specs = [learned] + [resolve_objective(str(b), ppo_config.clip_eps) for b in cfg.evaluate.baselines]
        results = evaluate_objectives(
            specs, env_names, ppo_config, int(cfg.evaluate.seeds), seed, fitness_cfg.final_fraction, overrides
        )
        paths = write_results(results, specs, run_dir, seed)
        summary["eval_seconds"] = time.perf_counter() - eval_started
        summary["report"] = str(write_report(run_dir, summary, paths["table"].read_text().strip()))
    return summary


def main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    # Absolute path: relative ones resolve against the *module* (a python
    # package lookup) when launched through the console script.
    config_dir = Path(__file__).resolve().parents[2] / "configs"

    @hydra.main(version_base=None, config_path=str(config_dir), config_name="meta_train")
    def _main(cfg) -> None:
        run_dir = Path(cfg.run_dir) if cfg.run_dir else Path(HydraConfig.get().runtime.output_dir)
        with cli_errors("metarl-meta-train"):
            summary = run(cfg, run_dir)
        artifact = Path(summary.get("artifact", run_dir))
        # learned_objective.npz / learned_optimizer.npz / learned_rule.npz -> "learned objective: ..."
        print(f"{artifact.stem.replace('_', ' ')}: {artifact}")
        if "report" in summary:
            print(Path(summary["report"]).read_text())
            print(f"report: {summary['report']}")
        else:
            print(f"run directory: {run_dir}")

    _main()


if __name__ == "__main__":
    main()
