"""Everything a job will read, checked before its run directory is touched or anything compiles.

:func:`check_job` runs in the app between Hydra and the job. The run
directory must be a directory that can be created and written, and the job's
whole configuration must hold: every option's kind and declared range, every
name (envs, teachers, strategies, objectives, optimizers, levels, ...) and
every input file. A job's check builds the settings its ``run`` builds and
stops there, so a bad input costs no compile and leaves no file behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from metarl.config import as_int, build_dataclass, check_finite, check_number, check_value
from metarl.config import close_matches, plain, positive_int, unknown_name

# Declared ranges of the optimizer zoo's numeric options (configs/optimizer/*.yaml); the rest need only be finite
OPTIMIZER_BOUNDS = {"learning_rate": {"gt": 0}, "eps": {"ge": 0}, "weight_decay": {"ge": 0},
                    "momentum": {"ge": 0, "le": 1}, "decay": {"ge": 0, "le": 1}, "b1": {"ge": 0, "lt": 1},
                    "b2": {"ge": 0, "lt": 1}}


def check_run_dir(run_dir: str | Path) -> None:
    """``run_dir`` is, or can be made, a writable directory: tried with a temporary folder that is removed again."""
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"run directory {path} is a file, not a directory")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot create the run directory {path}: {existing} is a file, not a directory")
    try:
        with tempfile.TemporaryDirectory(dir=existing, prefix=".metarl-write-check-"):
            pass
    except OSError as error:
        raise ValueError(f"cannot write the run directory {path}: {existing} is not writable "
                         f"({(error.strerror or type(error).__name__).lower()})") from None


def check_optimizer_section(section: Any, name: str = "optimizer") -> None:
    """A zoo optimizer's numbers: finite, and in range where declared (:data:`OPTIMIZER_BOUNDS`)."""
    values = plain(section) or {}
    check_finite(values, name)
    for key, bounds in OPTIMIZER_BOUNDS.items():
        if values.get(key) is not None and not isinstance(values[key], str):
            check_number(values[key], f"{name}.{key}", **bounds)


# --- one check per job -----------------------------------------------------------------------------------
def _train(cfg: Any) -> None:
    from metarl.jobs.train import build_agent_config, build_env, build_optimizer, check_optimizer_use, seed_block

    seed_block(cfg.get("seed_block"), positive_int(cfg.get("seeds", 1), "seeds"))
    as_int(cfg.get("seed", 0), "seed")
    if cfg.get("checkpoint_every") is not None:
        positive_int(cfg.get("checkpoint_every"), "checkpoint_every")
    agent, config = build_agent_config(cfg.get("agent"))  # agent.name: ppo (absent) or sac
    check_optimizer_use(agent)
    if agent == "ppo":
        check_optimizer_section(cfg.get("optimizer"))
        build_optimizer(cfg.get("optimizer"))
    _, env, env_params, _ = build_env(cfg.get("env"), agent)  # env.tasks / env.eval_tasks resolved here
    config.validate(env, env_params)


def _baselines(cfg: Any) -> None:
    """``evaluate.baselines``: fixed objectives or objective files."""
    from metarl.eval.objectives import FIXED_OBJECTIVES
    from metarl.meta.settings import section

    for baseline in section(cfg, "evaluate").get("baselines") or []:
        if str(baseline).lower() not in FIXED_OBJECTIVES and not Path(str(baseline)).exists():
            raise ValueError(f"evaluate.baselines: {unknown_name('baseline', baseline, FIXED_OBJECTIVES)}")


def _ppo_meta(cfg: Any) -> Any:
    """The settings both PPO-based meta-train jobs read, checked; every env built once."""
    import envs
    from metarl.meta.ppo_meta import PPOMetaSettings
    from metarl.meta.settings import check_run_options, section

    check_run_options(cfg)
    settings = PPOMetaSettings.from_config(cfg)
    settings.ppo.validate(prefix="inner")
    check_finite(settings.overrides, "env.overrides")
    _baselines(cfg)
    for name in settings.env_names:
        settings.ppo.validate(*envs.make(name, **settings.overrides), prefix="inner")
    for name in section(cfg, "evaluate").get("heldout_envs") or []:  # evaluated with no env.overrides
        if str(name) in settings.env_names:
            raise ValueError(f"evaluate.heldout_envs: {name} is a meta-training env, not a held-out one")
        settings.ppo.validate(*envs.make(str(name)), prefix="inner")
    return settings


def _meta_objective(cfg: Any) -> None:
    from metarl.jobs.meta_train import build_objective
    from metarl.meta.settings import section

    settings = _ppo_meta(cfg)
    build_objective(section(cfg, "objective"), settings.ppo)


def _meta_optimizer(cfg: Any) -> None:
    from metarl.meta.optimizer_fitness import fixed_drift, load_or_build
    from metarl.meta.settings import section

    settings = _ppo_meta(cfg)
    fixed_drift(section(cfg, "objective"), settings.ppo.clip_eps)
    check_optimizer_section(section(cfg, "optimizer"))
    load_or_build(section(cfg, "optimizer"))


def _lpg_teacher(teacher: Mapping) -> None:
    """The level sampler of LPG meta-training: groove (its buffer options) or a PPO-curriculum teacher."""
    from curricula.factory import OPTION_BOUNDS
    from metarl.eval.curriculum import check_teacher
    from metarl.meta.lpg_es import GROOVE_KEYS, TEACHERS

    name = teacher.get("name", "groove")
    if name not in TEACHERS:  # worded as build_teacher words it
        raise ValueError(f"unknown teacher {name!r} for LPG meta-training{close_matches(str(name), TEACHERS)}; "
                         f"choose one of {list(TEACHERS)}")
    if name != "groove":
        check_teacher(teacher)
        return
    for key, value in teacher.items():
        if key not in ("name", "label"):
            if key not in GROOVE_KEYS:
                hint = close_matches(key, GROOVE_KEYS, or_list=True)
                raise ValueError(f"teacher.{key} is not a setting of groove{hint}")
            kind = "bool" if key == "duplicate_check" else "float"
            check_value(value, kind, f"teacher.{key}", **OPTION_BOUNDS.get(key, {}))


def _meta_lpg(cfg: Any) -> None:
    from metarl.eval.lpg import check_settings
    from metarl.jobs.meta_train_lpg import training_env
    from metarl.lpg.artifact import build_agent_config, build_rule
    from metarl.lpg.rule import LPGConfig
    from metarl.meta.lpg_es import LPGMetaConfig, es_config_for
    from metarl.meta.settings import check_run_options, section
    from metarl.meta.trainer import TrainerConfig

    check_run_options(cfg)
    objective = build_dataclass(LPGMetaConfig, section(cfg, "objective"), "objective")
    _, trainer = es_config_for(section(cfg, "meta"), objective.fitness)
    TrainerConfig(**trainer)
    build_dataclass(LPGConfig, objective.rule, "objective.rule")  # before build_rule fills in time_aware
    build_rule(objective.rule, objective.name == "ta_lpg")
    build_agent_config(objective.agent)
    check_settings(objective.eval)
    _lpg_teacher(section(cfg, "teacher") or {"name": "groove"})
    training_env(section(cfg, "env"))  # last: a grid-world level distribution compiles its sampler when built


def _meta_lpg_mg(cfg: Any) -> None:
    from metarl.jobs.meta_train_lpg_mg import run_config
    from metarl.lpg.artifact import build_agent_config, build_rule
    from metarl.lpg.rule import LPGConfig
    from metarl.meta.settings import check_run_options

    check_run_options(cfg)
    config = run_config(cfg)
    build_dataclass(LPGConfig, config.rule, "objective.rule")  # before build_rule fills in time_aware
    build_rule(config.rule, config.lifetime_min is not None)
    build_agent_config(config.agent)


def _evaluate(kind: str) -> Callable[[Any], None]:
    def check(cfg: Any) -> None:
        from metarl.jobs.evaluate import plan_objectives

        plan_objectives(cfg, kind)

    return check


def _evaluate_lpg(cfg: Any) -> None:
    from metarl.jobs.evaluate import check_lpg

    check_lpg(cfg)


def _curriculum(cfg: Any) -> None:
    from metarl.jobs.curriculum import check

    check(cfg)


def _continual(cfg: Any) -> None:
    from metarl.jobs.continual import build

    build(cfg)


def _reset_free(cfg: Any) -> None:
    from metarl.jobs.reset_free import build

    build(cfg)


def _meta_rl(cfg: Any) -> None:
    from metarl.jobs.meta_rl import build

    build(cfg)


CHECKS: dict[str, Callable[[Any], None]] = {
    "train": _train,
    "meta_train": _meta_objective,
    "meta_train_optimizer": _meta_optimizer,
    "meta_train_lpg": _meta_lpg,
    "meta_train_lpg_mg": _meta_lpg_mg,
    "evaluate_objective": _evaluate("objective"),
    "evaluate_optimizer": _evaluate("learned_optimizer"),
    "evaluate_lpg": _evaluate_lpg,
    "curriculum": _curriculum,
    "continual": _continual,
    "reset_free": _reset_free,
    "meta_rl": _meta_rl,
}


def check_job(job_name: str, cfg: Any, run_dir: str | Path) -> None:
    """The run directory, the loggers and the job's whole configuration; a job without a check gets the first two."""
    from metarl.io.tracking import check_loggers

    check_run_dir(run_dir)
    check_loggers(plain(cfg.get("logger")))  # every job: known names, their packages installed
    check = CHECKS.get(job_name)
    if check is not None:
        check(cfg)
