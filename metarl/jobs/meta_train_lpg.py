"""Job ``meta_train_lpg``: evolve a Learned Policy Gradient rule with ES on levels from a teacher.

    metarl-meta-train objective=lpg teacher=groove env=gridworld/all
    metarl-meta-train objective=ta_lpg teacher=domain_randomization env=gridworld/all meta.generations=24

The one ES loop (:func:`metarl.meta.trainer.run_meta_training`) with the
stateful :class:`metarl.meta.lpg_es.LPGFitness`: the teacher's state (GROOVE's
level buffer) rides along in the loop and in every checkpoint. Writes
``meta_log.jsonl``, ``checkpoints/``, ``learned_rule.npz``
(:func:`metarl.lpg.artifact.load_rule`) and, with ``evaluate.enabled``, the
held-out evaluation (:mod:`metarl.eval.lpg`, settings in ``objective.eval``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jax

import envs
from metarl import distributed
from metarl.config import build_dataclass, env_spec, plain
from metarl.io import tracking
from metarl.jobs.registry import Job, register
from metarl.lpg.a2c import make_a2c_lifetime
from metarl.lpg.artifact import ARTIFACT, build_agent_config, build_rule, save_rule
from metarl.lpg.lifetime import make_lpg_lifetime
from metarl.meta.es import EvolutionStrategy
from metarl.meta.lpg_es import LPGFitness, LPGMetaConfig, build_teacher, es_config_for
from metarl.meta.settings import section
from metarl.meta.trainer import TrainerConfig, run_meta_training

# evaluation settings live in objective.eval; of the evaluate section only the switch is read
SECTIONS = ("cpu_devices", "distributed", "objective", "meta", "env", "teacher", "evaluate.enabled", "seed", "resume",
            "allow_changes", "run_dir", "progress_bar")


def training_env(env_cfg: dict) -> Any:
    """The one env (a level distribution) of ``env``, with its ``overrides``."""
    name, overrides = env_spec(env_cfg)
    if not isinstance(name, str):
        raise ValueError(f"LPG meta-training samples the levels of one env; env.name is {name!r}")
    return envs.make(name, **overrides)[0]


def run(cfg: Any, run_dir: Path) -> dict:
    """``metarl-meta-train objective=lpg|ta_lpg teacher=groove|domain_randomization|fixed env=...``."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    objective = build_dataclass(LPGMetaConfig, section(cfg, "objective"), "objective")
    es_config, trainer_kwargs = es_config_for(section(cfg, "meta"), objective.fitness)
    trainer_config = TrainerConfig(show_progress=bool(cfg.get("progress_bar", True)), **trainer_kwargs)
    rule = build_rule(objective.rule, objective.name == "ta_lpg")
    agent_config = build_agent_config(objective.agent)
    env_cfg = section(cfg, "env")
    env = training_env(env_cfg)
    seed, resume = int(cfg.seed), bool(cfg.resume)

    a2c = make_a2c_lifetime(agent_config, env)
    antagonist = lambda k, level: a2c(k, level, objective.lifetime).final_return  # noqa: E731
    teacher_cfg = section(cfg, "teacher") or {"name": "groove"}
    teacher = build_teacher(teacher_cfg, env.task_space, antagonist, es_config.population_size // 2)
    init_key, teacher_key, es_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    init_mean = rule.init(init_key)
    es = EvolutionStrategy(es_config, init_mean)
    # one device: the teacher's state makes this fitness stateful, which the trainer does not spread over devices
    # (GSPMD sharding would make the result depend on the machine's core count)
    fitness = LPGFitness(teacher, make_lpg_lifetime(agent_config, env, rule), objective, es_config.population_size,
                         trainer_config.chunk_size, shard=False)
    teacher_name = teacher_cfg.get("name", "groove")
    metadata = {"objective": objective.name, "teacher": teacher_name, "env": env_cfg.get("name"), "seed": seed}
    result = run_meta_training(
        es, fitness, init_mean, es_key, trainer_config, run_dir, resume=resume, metadata=metadata,
        description=f"ES LPG ({type(teacher).__name__})", extra_state=teacher.init(teacher_key, env.task_space),
    )
    extra = {"generations": trainer_config.generations, "env": env_cfg.get("name"), "teacher": teacher_name,
             "seed": seed, "lifetime": objective.lifetime, "lifetime_min": objective.lifetime_min,
             "population_size": es_config.population_size, "objective": objective.name,
             "resolved_config": plain(cfg)}
    artifact = save_rule(run_dir / ARTIFACT, rule, agent_config, result.mean, extra)
    history = result.history
    summary = {
        "run_dir": str(run_dir),
        "artifact": str(artifact),
        "objective": objective.name,
        "teacher": teacher_name,
        "generations": trainer_config.generations,
        "population_size": es_config.population_size,
        "first_return_mean": history[0]["return_mean"],
        "last_return_mean": history[-1]["return_mean"],
        "train_seconds": time.perf_counter() - started,
    }
    evaluate_cfg = section(cfg, "evaluate")
    if evaluate_cfg.get("enabled", False) and objective.eval.get("enabled", True) and distributed.is_primary():
        from metarl.eval.lpg import evaluate_and_write

        eval_settings = {k: v for k, v in objective.eval.items() if k != "enabled"}
        paths = evaluate_and_write(artifact, out_dir=run_dir / "evaluation", seed=seed, **eval_settings)
        tracking.log_table("evaluate", json.loads(paths["table_json"].read_text()), names=("lifetime",))
        summary["report"] = str(paths["table"])
    return summary


register(Job(
    name="meta_train_lpg",
    run=run,
    config_name="meta_train",
    description="evolve a Learned Policy Gradient rule (LPG / TA-LPG) with ES on levels from a teacher",
    writes=("lpg_rule",),
    sections=SECTIONS,
    headline="last_return_mean",
))
