"""Job ``meta_train``: evolve a learned PPO objective (LPO / TA-LPO) with ES.

    metarl-meta-train                                  # LPO on Acrobot tasks, then report (held-out tasks, CartPole)
    metarl-meta-train meta=snes objective=ta_lpo meta.generations=50 env=cartpole env.name=[CartPole-v1,Acrobot-v1]
    metarl-meta-train resume=true run_dir=outputs/meta_train/<run>

The other meta-train jobs, picked by the config's ``job`` key (from the
``objective`` / ``optimizer`` group): ``meta_train_optimizer``
(``objective=ppo optimizer=learned``), ``meta_train_lpg`` (``objective=lpg|ta_lpg``)
and ``meta_train_lpg_mg`` (``objective=lpg_mg``).

The run directory gets ``reference_returns.json`` (PPO's return per env,
measured once), ``meta_log.jsonl``, ``checkpoints/`` (orbax, every
``meta.checkpoint_every`` generations, plus ``final_objective.npz``),
``learned_objective.npz`` and, with ``evaluate.enabled``, the evaluation
files (``comparison.json``: rliable's probability of improvement over each
baseline; ``performance_profile.png``), ``meta_curve.png`` and ``report.md``.
With ``env.task_sets`` (``env=acrobot_tasks``, the default) the inner runs train
on sampled training tasks and the evaluation uses held-out ones
(:mod:`metarl.meta.task_sets`); ``evaluate.heldout_envs`` adds envs never trained on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from metarl import distributed
from metarl.agents.ppo import PPOConfig
from metarl.io import tracking
from metarl.objectives.io import save_objective
from metarl.jobs.registry import Job, register
from metarl.meta.fitness import make_inner_fitness
from metarl.meta.plots import plot_meta_curve
from metarl.meta.ppo_meta import PPOMetaSettings, artifact_extra, evolve
from metarl.meta.settings import section
from metarl.meta.trainer import history_summary
from metarl.objectives import make_objective, objective_config

LEARNED_OBJECTIVES = ("lpo", "ta_lpo")
SECTIONS = ("cpu_devices", "distributed", "objective", "meta", "env", "inner", "fitness", "evaluate", "seed", "resume",
            "allow_changes", "run_dir", "progress_bar")


def build_objective(objective_cfg: dict, ppo_config: PPOConfig) -> Any:
    cfg = dict(objective_cfg)
    name = cfg.pop("name", None)
    if name not in LEARNED_OBJECTIVES:
        hint = " (objective=ppo is a fixed drift: add optimizer=learned to meta-train an optimizer)"
        hint = hint if name == "ppo" else ""
        raise ValueError(f"objective.name must be one of {LEARNED_OBJECTIVES} for meta-training, got {name!r}{hint}")
    if name == "ta_lpo" and cfg.get("use_log_lifetime"):
        cfg.setdefault("lifetime", ppo_config.num_updates)
    return make_objective(name, **cfg)


def write_report(run_dir: Path, summary: dict, table_md: str, comparison_md: str = "") -> Path:
    lines = [
        f"# Meta-training report: {summary['objective']} on {', '.join(summary['envs'])}{summary['distribution']}",
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
        summary["eval_tasks_note"],
        "",
        table_md,
        "",
        "IQM = interquartile mean over seeds; 95% CI = stratified bootstrap (rliable).",
        "",
        "## Learned objective against the baselines",
        "",
        summary["verdict_line"],
        "",
        comparison_md,
        "",
        "P(improvement) = probability that a run of the learned objective ends above a run of the baseline on the same "
        "env (Mann-Whitney), averaged over the envs of the row, with a 95% stratified-bootstrap interval (rliable). "
        "Verdict: wins / loses when the interval excludes 0.5, else ties.",
        "",
        "## Plots",
        "",
        "![ES fitness over generations](meta_curve.png)",
        "",
        "![Performance profiles](performance_profile.png)",
        "",
        "![Learning curves](learning_curves.png)",
        "",
        "![Drift over (r, A)](drift_heatmap.png)",
        "",
        "Files: `learned_objective.npz` (load with `metarl.objectives.io.load_objective`), `meta_log.jsonl`, "
        "`per_seed_returns.csv`, `aggregate.json`, `comparison.json`, `checkpoints/`.",
    ]
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(cfg: Any, run_dir: Path) -> dict:
    """The whole job for a resolved config; returns a summary dict."""
    started, run_dir = time.perf_counter(), Path(run_dir)
    settings = PPOMetaSettings.from_config(cfg)
    ppo_config, es_config, fitness_cfg = settings.ppo, settings.es, settings.fitness
    objective = build_objective(section(cfg, "objective"), ppo_config)
    result, refs = evolve(
        settings, run_dir,
        lambda refs: make_inner_fitness(objective, settings.env_names, ppo_config, fitness_cfg, refs,
                                        settings.overrides),
        objective.init, objective.name,
        {"objective": {"name": objective.name, "config": objective_config(objective)}},
    )
    train_seconds = time.perf_counter() - started
    extra = artifact_extra(settings, cfg, refs)
    artifact = save_objective(run_dir / "learned_objective.npz", objective, result.mean, extra=extra)
    save_objective(run_dir / "checkpoints" / "final_objective.npz", objective, result.mean, extra=extra)
    plot_meta_curve(result.history, run_dir / "meta_curve.png")

    summary = {
        "run_dir": str(run_dir),
        "artifact": str(artifact),
        "objective": objective.name,
        "envs": settings.env_names,
        "strategy": es_config.evosax_name,
        "population_size": es_config.population_size,
        "generations": settings.trainer.generations,
        "sigma": es_config.sigma,
        "learning_rate": es_config.learning_rate,
        "inner_timesteps": ppo_config.total_timesteps,
        "inner_updates": ppo_config.num_updates,
        "fitness_seeds": fitness_cfg.num_seeds,
        "reduce": fitness_cfg.reduce,
        "distribution": (f" ({settings.tasks['train']} training tasks drawn from each env's task space)"
                         if settings.tasks else ""),
        "reference_returns": {k: round(v, 2) for k, v in refs.items()},
        **history_summary(result.history),
        "train_seconds": train_seconds,
        "eval_seconds": 0.0,
        "eval_seeds": int(cfg.evaluate.seeds),
        "final_mean": result.mean,
    }
    if cfg.evaluate.enabled and distributed.is_primary():  # the other processes of a run have nothing to add
        eval_started = time.perf_counter()
        summary.update(evaluate_learned(cfg, settings, objective, result.mean, run_dir))
        summary["eval_seconds"] = time.perf_counter() - eval_started
        summary["report"] = str(write_report(run_dir, summary, summary.pop("table_md"), summary.pop("comparison_md")))
    return summary


def evaluate_learned(cfg: Any, settings: PPOMetaSettings, objective: Any, meta_params: Any, run_dir: Path) -> dict:
    """The learned objective and the baselines, with fresh seeds, on the meta-training envs (their held-out tasks
    when ``env.task_sets`` is set) and on ``evaluate.heldout_envs`` (each env's one task, no ``env.overrides``)."""
    from metarl.eval.objectives import ObjectiveSpec, evaluate_objectives, merge_results, resolve_objective
    from metarl.eval.report import write_comparison, write_results

    ppo_config, seeds = settings.ppo, int(cfg.evaluate.seeds)
    heldout_envs = [str(e) for e in (cfg.evaluate.get("heldout_envs") or [])]
    learned = ObjectiveSpec(f"{objective.name.upper()} (learned)", objective, meta_params)
    specs = [learned] + [resolve_objective(str(b), ppo_config.clip_eps) for b in cfg.evaluate.baselines]
    frac = settings.fitness.final_fraction
    tasks = {name: sets.heldout_for(seeds) for name, sets in (settings.task_sets or {}).items()}
    parts = [evaluate_objectives(specs, settings.env_names, ppo_config, seeds, settings.seed, frac, settings.overrides,
                                 tasks)]
    if heldout_envs:
        parts.append(evaluate_objectives(specs, heldout_envs, ppo_config, seeds, settings.seed + 1, frac))
    rename = {name: f"{name} (held-out tasks)" for name in tasks}
    results = merge_results(parts, rename)
    paths = write_results(results, specs, run_dir, settings.seed)
    tracking.log_table("evaluate", json.loads(paths["table_json"].read_text()))
    comparison = write_comparison(results, learned.label, [s.label for s in specs[1:]], run_dir, settings.seed)
    where = ([f"{n}: seed i trains on held-out task i of {settings.task_sets[n].num_heldout} (never trained on)"
              for n in tasks] + [f"{n}: an env not meta-trained on" for n in heldout_envs]
             + [f"{n}: its one task (as meta-trained)" for n in settings.env_names if n not in tasks])
    phrase = {"wins": "beats", "ties": "ties with", "loses": "loses to"}
    verdicts = ", ".join(f"{phrase[r['verdict']]} {r['baseline']} (P(improvement) = {r['p_improvement']:.2f} "
                         f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}])" for r in comparison["rows"] if r["envs"] == "all")
    return {
        "eval_tasks_note": "; ".join(where) + ".",
        "heldout_envs": heldout_envs,
        "comparison": comparison["rows"],
        "verdict_line": f"**The learned objective {verdicts}.**" if verdicts else comparison["table"].read_text().strip(),
        "table_md": paths["table"].read_text().strip(),
        "comparison_md": comparison["table"].read_text().strip(),
    }


register(Job(
    name="meta_train",
    run=run,
    config_name="meta_train",
    description="evolve a learned PPO objective (LPO / TA-LPO) with ES, then evaluate it against PPO and DPO",
    writes=("objective",),
    sections=SECTIONS,
    headline="last_fitness_mean",
))
